//! Config loading from arbitrary text: TOML, YAML or JSON, `${ENV}` interpolation, the
//! per-section and per-mapping readers, validation and line attribution. Any input may be
//! refused; none may panic.
//!
//! Input: the first byte picks the format (`t` TOML, `y` YAML, `j` JSON, anything else by its
//! value mod 3), the rest is the file's text (lossily decoded, as a file that is not UTF-8
//! never reaches the parser). Seeds: `t`/`y`/`j` + a config file (fuzz/seed-corpus.sh).
#![no_main]

use esmd::config::{interpolate, Config, Format};
use libfuzzer_sys::fuzz_target;

/// Variables the references in the text can name: set, set-but-empty, and values holding what
/// must never be interpreted again (quotes, newlines, another reference). Names starting with
/// `UNSET` (and any name not below) are unset.
fn env(name: &str) -> Option<String> {
    match name {
        "EMPTY" => Some(String::new()),
        "QUOTE" => Some("\"]\n[[mappings]]\nname = \"x\"".into()),
        "NESTED" => Some("${NESTED}".into()),
        "URL" | "FN_URL" => Some("http://127.0.0.1:9000/".into()),
        "PORT" => Some("9464".into()),
        "TOKEN" | "API_TOKEN" => Some("t0ken".into()),
        n if n.starts_with("UNSET") => None,
        n if n.len() % 2 == 0 => Some(n.to_ascii_lowercase()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let format = match selector {
        b't' => Format::Toml,
        b'y' => Format::Yaml,
        b'j' => Format::Json,
        n => [Format::Toml, Format::Yaml, Format::Json][usize::from(n) % 3],
    };
    let text = String::from_utf8_lossy(rest);

    match Config::from_str_with_env(&text, format, &env) {
        Ok(config) => {
            // What `esmd validate` and the startup log print.
            let _ = format!("{config:?}");
            for m in config.enabled_mappings() {
                assert!(config.mapping(&m.name).is_some());
            }
        }
        Err(e) => {
            // Every problem renders (mapping name, key, line).
            let _ = e.to_string();
            for p in e.problems() {
                let _ = p.to_string();
            }
        }
    }

    // The interpolation on its own: text without `$` comes back unchanged, and a value is never
    // interpolated twice.
    match interpolate(&text, &env) {
        Ok(out) => {
            if !text.contains('$') {
                assert_eq!(out, text);
            }
            if text == "${NESTED}" {
                assert_eq!(out, "${NESTED}");
            }
        }
        Err(e) => {
            let _ = e.to_string();
            assert!(text.contains("${"), "an error without a reference: {e}");
        }
    }
});

//! `${VAR}` and `${VAR:-default}` in config text, resolved before parsing so secrets can stay
//! out of files. `$${` writes a literal `${`. Comment lines are left alone.

/// Replaces every reference; errors name each missing variable and its line.
pub fn interpolate(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(t) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = t;
            } else if let Some(t) = tail.strip_prefix("${") {
                let Some(end) = t.find('}') else {
                    errors.push(format!("line {}: unterminated ${{", n + 1));
                    out.push_str(tail);
                    rest = "";
                    break;
                };
                let inner = &t[..end];
                let (name, default) = match inner.split_once(":-") {
                    Some((name, d)) => (name, Some(d)),
                    None => (inner, None),
                };
                match (lookup(name), default) {
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => errors.push(format!("line {}: environment variable {name} is not set (use ${{{name}:-default}} for a default)", n + 1)),
                }
                rest = &t[end + 1..];
            } else {
                out.push('$');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_string())
    }

    #[test]
    fn replaces_defaults_and_escapes() {
        assert_eq!(interpolate("a = \"${TOKEN}\"\nb = \"${NOPE:-x}\"\nc = \"$${TOKEN} $5\"\n", env).unwrap(), "a = \"s3cret\"\nb = \"x\"\nc = \"${TOKEN} $5\"\n");
    }

    #[test]
    fn missing_variable_names_it_and_the_line() {
        let e = interpolate("\n\nkey = \"${MISSING}\"", env).unwrap_err();
        assert_eq!(e, vec!["line 3: environment variable MISSING is not set (use ${MISSING:-default} for a default)"]);
    }

    #[test]
    fn comments_are_left_alone() {
        assert_eq!(interpolate("# ${MISSING}\n", env).unwrap(), "# ${MISSING}\n");
    }
}

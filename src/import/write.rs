//! The TOML text: one `[[mappings]]` per imported mapping, in input order, each headed by where
//! it came from and what the import said about it (the file is what stays after the terminal
//! scrolled away).

use super::error::Severity;
use super::model::{text, Mapping, Said};
use std::fmt::Write as _;

/// A mapping to write, with its input and the warnings and notes about it.
pub(crate) struct Entry<'a> {
    pub input: &'a str,
    pub mapping: &'a Mapping,
    pub said: &'a [Said],
}

pub(crate) fn render(inputs: &[&str], entries: &[Entry<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Imported by `esmd import` from {}.", inputs.join(", "));
    out.push_str("# Functions are called through the Lambda Invoke API with the AWS SDK's credentials. For\n");
    out.push_str("# LocalStack or the runtime interface emulator add function.endpoint_url; for a function\n");
    out.push_str("# served over HTTP write function = { type = \"http\", url = \"...\" } instead.\n");
    for entry in entries {
        let m = entry.mapping;
        out.push('\n');
        match m.origin.as_str() {
            "" => {
                let _ = writeln!(out, "# From {}.", entry.input);
            }
            origin => {
                let _ = writeln!(out, "# From {}: {origin}.", entry.input);
            }
        }
        for said in entry.said {
            let level = match said.severity {
                Severity::Warning => "warning",
                Severity::Note => "note",
            };
            let line = match said.path.as_str() {
                "" => format!("{level}: {}", said.message),
                path => format!("{level}: {path}: {}", said.message),
            };
            let _ = writeln!(out, "# {}", line.replace(['\n', '\r'], " "));
        }
        out.push_str("[[mappings]]\n");
        line(&mut out, "name", &toml::Value::String(m.name.clone()));
        for (key, value) in &m.keys {
            line(&mut out, key, value);
        }
        out.push_str("\n[mappings.source]\n");
        for (key, value) in &m.source {
            line(&mut out, key, value);
        }
        out.push_str("\n[mappings.function]\n");
        for (key, value) in &m.function {
            line(&mut out, key, value);
        }
        for pattern in &m.patterns {
            out.push_str("\n[[mappings.filter_criteria.filters]]\n");
            line(&mut out, "pattern", &text(pattern));
        }
    }
    out
}

/// Keys are esmd's own (bare TOML keys); values in TOML's inline syntax.
fn line(out: &mut String, key: &str, value: &toml::Value) {
    let _ = writeln!(out, "{key} = {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_mapping_that_parses_back() {
        let mut destination = toml::Table::new();
        destination.insert("destination".into(), text("arn:aws:sqs:us-east-1:123456789012:dlq"));
        let mut config = toml::Table::new();
        config.insert("on_failure".into(), toml::Value::Table(destination));
        let m = Mapping {
            name: "orders".into(),
            origin: "Resources.Orders".into(),
            keys: vec![("batch_size".into(), toml::Value::Integer(10)), ("destination_config".into(), toml::Value::Table(config))],
            source: vec![("type".into(), toml::Value::String("kinesis".into())), ("stream_arn".into(), text("arn:aws:kinesis:us-east-1:123456789012:stream/s"))],
            function: vec![("type".into(), toml::Value::String("lambda".into())), ("function_name".into(), text("orders"))],
            patterns: vec!["{\"data\": {\"kind\": [\"order\"]}}".into(), "{\"a\": [\"it's\"]}".into()],
            ..Mapping::default()
        };
        let said = [Said { severity: Severity::Warning, path: "Resources.Orders.Properties.Tags".into(), message: "esmd mappings have no tags: not\nimported".into() }];
        let out = render(&["t.yaml"], &[Entry { input: "t.yaml", mapping: &m, said: &said }]);
        assert!(out.contains("# From t.yaml: Resources.Orders.\n# warning: Resources.Orders.Properties.Tags: esmd mappings have no tags: not imported\n[[mappings]]\nname = \"orders\"\n"), "{out}");
        let parsed: toml::Table = toml::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        let mapping = &parsed["mappings"].as_array().unwrap()[0];
        assert_eq!(mapping["destination_config"]["on_failure"]["destination"].as_str(), Some("arn:aws:sqs:us-east-1:123456789012:dlq"));
        assert_eq!(mapping["filter_criteria"]["filters"][1]["pattern"].as_str(), Some("{\"a\": [\"it's\"]}"));
        assert_eq!(mapping["source"]["type"].as_str(), Some("kinesis"));
    }
}

//! The `esmd import` command line: read the inputs, import, print warnings and notes on
//! stderr, write the config to stdout or `-o FILE`.

use super::error::{ImportError, Severity};
use super::overrides::{parse_parameter, parse_set, Parameter, Set};
use super::{import, Input, Options};
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug)]
pub struct ImportArgs {
    /// `aws lambda get-event-source-mapping` or `list-event-source-mappings` output (JSON), or
    /// CloudFormation / SAM templates (YAML or JSON); `-` reads stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Write the config to this file (*.toml) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Use VALUE at the input's key PATH, as a message names it (a value a template cannot
    /// give before it is deployed: `Resources.M.Properties.EventSourceArn=arn:aws:sqs:...`).
    /// VALUE is JSON when it reads as JSON, else text. Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = parse_set)]
    pub sets: Vec<Set>,
    /// A template parameter's value, or a pseudo-parameter's (`AWS::Region=eu-west-1`,
    /// `AWS::AccountId=123456789012`). Repeatable.
    #[arg(long = "parameter", value_name = "NAME=VALUE", value_parser = parse_parameter)]
    pub parameters: Vec<Parameter>,
}

/// Runs `esmd import`; nothing is written when it fails.
pub fn run(args: &ImportArgs) -> Result<(), ImportError> {
    if let Some(path) = &args.output {
        if !path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
            return Err(ImportError::OutputFormat { path: path.clone() });
        }
    }
    let mut inputs = Vec::with_capacity(args.inputs.len());
    for path in &args.inputs {
        let text = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|source| ImportError::Read { path: path.clone(), source })?;
            text
        } else {
            std::fs::read_to_string(path).map_err(|source| ImportError::Read { path: path.clone(), source })?
        };
        inputs.push(Input { name: path.display().to_string(), text });
    }
    let imported = import(&inputs, &Options { sets: args.sets.clone(), parameters: args.parameters.clone() })?;
    for notice in &imported.notices {
        eprintln!("{notice}");
    }
    match &args.output {
        Some(path) => std::fs::write(path, &imported.toml).map_err(|source| ImportError::Write { path: path.clone(), source })?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(imported.toml.as_bytes()).and_then(|()| out.flush()).map_err(|source| ImportError::Write { path: "stdout".into(), source })?;
        }
    }
    let count = |s: Severity| imported.notices.iter().filter(|n| n.severity == s).count();
    let target = args.output.as_ref().map_or_else(|| "stdout".to_string(), |p| p.display().to_string());
    eprintln!(
        "esmd import: {} mapping{} written to {target} ({} warning{}, {} note{})",
        imported.mappings,
        if imported.mappings == 1 { "" } else { "s" },
        count(Severity::Warning),
        if count(Severity::Warning) == 1 { "" } else { "s" },
        count(Severity::Note),
        if count(Severity::Note) == 1 { "" } else { "s" },
    );
    if !imported.variables.is_empty() {
        eprintln!("esmd import: set these environment variables before running it: {}", imported.variables.join(", "));
    }
    Ok(())
}

//! `esmd import`: AWS event source mapping definitions → an esmd config (TOML).
//!
//! Inputs: `aws lambda get-event-source-mapping` and `list-event-source-mappings` output, and
//! CloudFormation / SAM templates (YAML with short-form intrinsics, or JSON). Every AWS key is
//! imported under esmd's name, refused with a warning, or known to be read-only state
//! (`table`); values a template cannot give without a deployed stack are reported with their
//! key path, never guessed (`intrinsic`), and `--set PATH=VALUE` supplies them. The output is
//! checked with esmd's own validation before it is written, so it loads as written.
//!
//! Layout, leaves first: `error`; `document` (text → tree), `overrides` (`--set`,
//! `--parameter`), `intrinsic`; `model` (a mapping being written), `table` (the parameter
//! table), `source` (the source section); `convert` (a definition → a mapping); the inputs
//! `aws_cli`, `template` and `sam`; `write` (TOML); `command` (the CLI).

mod aws_cli;
mod command;
mod convert;
mod document;
mod error;
mod intrinsic;
mod model;
mod overrides;
mod sam;
mod source;
mod table;
mod template;
mod write;

pub use command::{run, ImportArgs};
pub use error::{ImportError, Notice, Problem, Severity};
pub use overrides::{parse_parameter, parse_set, Parameter, Set};

use crate::config::{Config, Format};
use convert::{Definition, Names};
use document::Kind;
use error::Findings;
use intrinsic::{Context, Literal, Resolve};
use model::{Build, Mapping, Said};
use std::collections::HashSet;

/// One input: its name for messages (a path, or `-`) and its text.
#[derive(Clone, Debug)]
pub struct Input {
    pub name: String,
    pub text: String,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub sets: Vec<Set>,
    pub parameters: Vec<Parameter>,
}

/// A successful import.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The config, ready to write; it passes `esmd validate` once `variables` are set.
    pub toml: String,
    pub mappings: usize,
    pub notices: Vec<Notice>,
    /// Environment variables the config reads without a default (credentials, MSK brokers).
    pub variables: Vec<String>,
}

struct Written {
    input: String,
    mapping: Mapping,
    said: Vec<Said>,
}

/// Converts every input; reports every problem of every input at once.
pub fn import(inputs: &[Input], options: &Options) -> Result<Imported, ImportError> {
    let mut findings = Findings::default();
    let mut names = Names::default();
    let mut written: Vec<Written> = Vec::new();
    let mut sets_used = vec![false; options.sets.len()];
    let mut parameters_known: HashSet<String> = HashSet::new();
    let mut templates = 0;
    let mut skipped: Vec<Problem> = Vec::new();

    for input in inputs {
        let mut doc = match document::parse(&input.text) {
            Ok(doc) => doc,
            Err(message) => {
                findings.error(&input.name, "", message);
                continue;
            }
        };
        for (set, used) in options.sets.iter().zip(sets_used.iter_mut()) {
            if overrides::applies_to(&doc.root, set) {
                *used = true;
                if let Err(why) = overrides::apply(&mut doc.root, set) {
                    findings.error(&input.name, &set.path, format!("--set: {why}"));
                }
            }
        }
        let kind = match document::kind(&doc.root) {
            Ok(kind) => kind,
            Err(message) => {
                findings.error(&input.name, "", message);
                continue;
            }
        };
        let (definitions, said, resolver): (Vec<Definition>, Vec<Said>, Box<dyn Resolve>) = match kind {
            Kind::One | Kind::List => match aws_cli::definitions(&doc.root, kind) {
                Ok((defs, said)) => (defs, said, Box::new(Literal)),
                Err((path, message)) => {
                    findings.error(&input.name, path, message);
                    continue;
                }
            },
            Kind::Template => {
                templates += 1;
                let (context, unknown) = Context::new(&doc.root, doc.style, &options.parameters);
                parameters_known.extend(options.parameters.iter().map(|p| p.name.clone()).filter(|n| !unknown.contains(n)));
                let scan = template::scan(&doc.root);
                for (path, message) in scan.errors {
                    findings.error(&input.name, path, message);
                }
                (scan.definitions, scan.said, Box::new(context))
            }
        };
        attribute(&mut findings, &input.name, &said);
        for definition in &definitions {
            let outcome = convert::convert(definition, resolver.as_ref(), &mut names);
            let Build { mapping, said, errors } = outcome.build;
            attribute(&mut findings, &input.name, &said);
            for (path, message) in &errors {
                findings.error(&input.name, path, message);
            }
            if outcome.skipped {
                skipped.extend(said.iter().map(|s| Problem { input: input.name.clone(), path: s.path.clone(), message: s.message.clone() }));
            }
            if errors.is_empty() && !outcome.skipped {
                written.push(Written { input: input.name.clone(), mapping, said });
            }
        }
    }

    for (set, used) in options.sets.iter().zip(&sets_used) {
        if !used {
            let first = set.path.split(['.', '[']).next().unwrap_or_default();
            return Err(ImportError::Option { option: "--set", arg: set.path.clone(), why: format!("no input has a top-level key {first:?}") });
        }
    }
    for p in &options.parameters {
        if !parameters_known.contains(&p.name) {
            let why = if templates == 0 { "parameters apply to templates, and no input is one".to_string() } else { "no template declares this parameter (pseudo-parameters: AWS::Region, AWS::AccountId, AWS::Partition, AWS::URLSuffix, AWS::StackName, AWS::StackId)".to_string() };
            return Err(ImportError::Option { option: "--parameter", arg: p.name.clone(), why });
        }
    }
    if !findings.problems.is_empty() {
        return Err(ImportError::Invalid { problems: findings.problems });
    }
    if written.is_empty() {
        let input = inputs.first().map_or_else(|| "-".to_string(), |i| i.name.clone());
        let mut problems = vec![Problem { input, path: String::new(), message: "nothing to import: every mapping was left out".into() }];
        problems.extend(skipped);
        return Err(ImportError::Invalid { problems });
    }

    let input_names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let entries: Vec<write::Entry<'_>> = written.iter().map(|w| write::Entry { input: &w.input, mapping: &w.mapping, said: &w.said }).collect();
    let toml = write::render(&input_names, &entries);
    check(&toml, &written)?;

    findings.notice(
        Severity::Note,
        "",
        "",
        "every function is called through the Lambda Invoke API with the AWS SDK's credentials; for LocalStack or the runtime interface emulator add function.endpoint_url, for a function served over HTTP use function = { type = \"http\", url = \"...\" }",
    );
    let variables: Vec<String> = written.iter().flat_map(|w| w.mapping.variables.iter().map(|(n, _)| n.clone())).collect();
    Ok(Imported { toml, mappings: written.len(), notices: findings.notices, variables })
}

fn attribute(findings: &mut Findings, input: &str, said: &[Said]) {
    for s in said {
        findings.notice(s.severity, input, &s.path, &s.message);
    }
}

/// esmd's own validation of the output, as `esmd validate` runs it, with the variables the
/// output reads set to values of the right shape. A problem is reported at the AWS key its
/// esmd key came from.
fn check(toml: &str, written: &[Written]) -> Result<(), ImportError> {
    let samples: Vec<(&str, &str)> = written.iter().flat_map(|w| w.mapping.variables.iter().map(|(n, v)| (n.as_str(), v.as_str()))).collect();
    let env = |name: &str| samples.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    let at = |mapping: Option<&str>| written.iter().find(|w| Some(w.mapping.name.as_str()) == mapping);
    let cfg = match Config::from_str_with_env(toml, Format::Toml, &env) {
        Ok(cfg) => cfg,
        Err(e) => {
            let problems = e
                .problems()
                .iter()
                .map(|p| match at(p.mapping.as_deref()) {
                    Some(w) => Problem {
                        input: w.input.clone(),
                        path: Build::input_path_of(&w.mapping, &p.key).unwrap_or_else(|| w.mapping.origin.clone()),
                        message: format!("esmd refuses the imported value: {}", p.message),
                    },
                    None => Problem { input: "output".into(), path: String::new(), message: p.to_string() },
                })
                .collect::<Vec<_>>();
            let problems = if problems.is_empty() { vec![Problem { input: "output".into(), path: String::new(), message: e.to_string() }] } else { problems };
            return Err(ImportError::Invalid { problems });
        }
    };
    crate::app::check(&cfg).map_err(|e| ImportError::Invalid { problems: vec![Problem { input: "output".into(), path: String::new(), message: e.to_string() }] })
}

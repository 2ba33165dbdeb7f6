//! Every example config in config/ loads; the examples for sources whose connectors are not
//! built yet (config/pending/) fail only because of that; the same config in TOML, YAML and
//! JSON loads equal; and an invalid file reports every problem, exactly as recorded.

use esmd::config::{Config, ConfigError, Format};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Examples that must load as they are, with no environment variable set (their `${VAR:-…}`
/// defaults must be enough).
const VALID: &[&str] = &["quickstart.toml", "kafka-schema-registry.toml", "fleet.toml", "queue.toml", "tumbling-window.toml", "sqs.toml", "kinesis.toml", "dynamodb-streams.toml", "kinesis-fleet.toml"];

/// Examples that load once their secrets are in the environment (see [`secrets`]), and fail
/// naming the secret's key without them.
const WITH_SECRETS: &[(&str, &str)] = &[("kafka.toml", "source.sasl.password"), ("rabbitmq.toml", "source.password")];

/// Examples pending a connector, with their source type. Each must fail with exactly one
/// problem: its source type is not available in this build. Everything else in them (the
/// mapping's parameters against the source type's profile, the function, the destination) is
/// checked now. When a connector lands, move its example to config/ and into VALID.
const PENDING: &[(&str, &str)] = &[];

/// Secrets the pending examples read from the environment (no defaults, on purpose).
fn secrets(name: &str) -> Option<String> {
    match name {
        "KAFKA_PASSWORD" | "RABBITMQ_PASSWORD" => Some("not-a-real-secret".into()),
        _ => None,
    }
}

fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let format = Format::from_path(path).unwrap_or_else(|| panic!("{}: unknown extension", path.display()));
    Config::from_str_with_env(&text, format, env)
}

fn config_files(dir: &Path) -> Vec<String> {
    // config/pending/ only exists while some connector is still missing.
    if !dir.exists() {
        return Vec::new();
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| Format::from_path(p).is_some())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_example_is_listed() {
    let mut valid: Vec<String> = VALID.iter().chain(WITH_SECRETS.iter().map(|(f, _)| f)).map(|s| s.to_string()).collect();
    valid.sort();
    assert_eq!(config_files(&root().join("config")), valid, "config/: add new examples to VALID");
    let mut pending: Vec<String> = PENDING.iter().map(|(f, _)| f.to_string()).collect();
    pending.sort();
    assert_eq!(config_files(&root().join("config/pending")), pending, "config/pending/: add new examples to PENDING");
}

#[test]
fn memory_examples_load() {
    for name in VALID {
        let path = root().join("config").join(name);
        let cfg = load(&path, &|_| None).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert!(!cfg.mappings.is_empty(), "{name}");
        for m in &cfg.mappings {
            // The engine settings resolve for every mapping of its family.
            match m.family() {
                esmd::config::Family::Stream => drop(m.stream_settings().unwrap_or_else(|e| panic!("{name}: {e}"))),
                esmd::config::Family::Queue => drop(m.queue_settings().unwrap_or_else(|e| panic!("{name}: {e}"))),
            }
            assert!(m.filter_criteria().is_ok(), "{name}: {}", m.name);
        }
    }
}

#[test]
fn quickstart_is_a_memory_stream_into_an_http_function_with_a_file_destination() {
    let cfg = load(&root().join("config/quickstart.toml"), &|_| None).unwrap();
    let m = &cfg.mappings[0];
    assert!(m.source.downcast::<esmd_memory::MemorySource>().is_some());
    assert!(matches!(m.function, esmd::config::FunctionConfig::Http(_)));
    assert_eq!(m.on_failure_destination().map(|d| d.kind()), Some("file"));
    assert!(cfg.admin.listen.ip().is_loopback());
}

#[test]
fn fleet_has_several_mappings() {
    let cfg = load(&root().join("config/fleet.toml"), &|_| None).unwrap();
    assert!(cfg.mappings.len() >= 3);
    assert!(cfg.mappings.iter().any(|m| m.family() == esmd::config::Family::Queue));
    assert!(cfg.mappings.iter().any(|m| !m.enabled));
}

#[test]
fn pending_examples_fail_only_for_their_missing_connector() {
    for (name, source_type) in PENDING {
        let path = root().join("config/pending").join(name);
        let problems = match load(&path, &secrets) {
            Ok(_) => panic!("{name} loads: its connector exists now, move it to config/ and into VALID"),
            Err(e) => e.problems().to_vec(),
        };
        assert_eq!(problems.len(), 1, "{name}: {problems:#?}");
        assert_eq!(problems[0].key, "source.type", "{name}: {problems:#?}");
        assert!(
            problems[0].message.starts_with(&format!("source.type = {source_type:?} is not available in this build")),
            "{name}: {problems:#?}"
        );
    }
}

#[test]
fn examples_with_secrets_load_only_with_them() {
    for (name, key) in WITH_SECRETS {
        let path = root().join("config").join(name);
        let e = load(&path, &|_| None).unwrap_err();
        assert!(e.problems().iter().any(|p| p.key == *key && p.message.contains("is not set")), "{name}: {e}");
        let cfg = load(&path, &secrets).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        for m in &cfg.mappings {
            match m.family() {
                esmd::config::Family::Stream => drop(m.stream_settings().unwrap_or_else(|e| panic!("{name}: {e}"))),
                esmd::config::Family::Queue => drop(m.queue_settings().unwrap_or_else(|e| panic!("{name}: {e}"))),
            }
        }
    }
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_example_caps_infinite_retries_with_a_destination_at_ten() {
    let mut cfg = load(&root().join("config/kafka.toml"), &secrets).unwrap();
    let m = &mut cfg.mappings[0];
    assert_eq!(m.stream_settings().unwrap().maximum_retry_attempts, Some(5));
    m.params.maximum_retry_attempts = Some(-1);
    assert_eq!(m.stream_settings().unwrap().maximum_retry_attempts, Some(10), "AWS caps -1 at 10 for Kafka with a destination");
    m.params.destination_config = None;
    assert_eq!(m.stream_settings().unwrap().maximum_retry_attempts, None);
    let Some(k) = m.source.downcast::<esmd_kafka::KafkaSourceConfig>() else { panic!("kafka") };
    assert_eq!(k.group_id(&m.name), "esmd-orders");
}

#[test]
fn toml_yaml_and_json_load_equal() {
    let dir = root().join("tests/fixtures/config");
    let toml = load(&dir.join("equivalent.toml"), &|_| None).unwrap_or_else(|e| panic!("{e}"));
    for other in ["equivalent.yaml", "equivalent.json"] {
        let cfg = load(&dir.join(other), &|_| None).unwrap_or_else(|e| panic!("{other}: {e}"));
        assert_eq!(cfg, toml, "{other}");
    }
    let m = &toml.mappings[0];
    let esmd::config::FunctionConfig::Http(h) = &m.function else { panic!("http") };
    assert_eq!(h.headers["X-Api-Key"].expose(), "dev");
    assert_eq!(m.stream_settings().unwrap().starting_position, esmd_api::StartFrom::AtTimestamp(1_709_294_400_000));
}

#[test]
fn config_load_reads_files_by_extension() {
    let dir = root().join("tests/fixtures/config");
    let cfg = Config::load(dir.join("equivalent.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.mappings.len(), 2);
    let e = Config::load(dir.join("equivalent.ini")).unwrap_err();
    assert!(matches!(e, ConfigError::UnknownFormat { .. }), "{e}");
    let e = Config::load(dir.join("missing.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }) && e.to_string().contains("missing.toml"), "{e}");
}

#[test]
fn an_invalid_file_reports_every_problem() {
    let dir = root().join("tests/fixtures/config");
    let env: HashMap<&str, &str> = HashMap::new();
    let e = load(&dir.join("invalid.toml"), &|k| env.get(k).map(|v| v.to_string())).unwrap_err();
    let expected_path = dir.join("invalid.expected");
    let actual = format!("{e}\n");
    if std::env::var_os("ESMD_BLESS").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    assert_eq!(actual, expected, "the report changed; review it and rerun with ESMD_BLESS=1 to record it");
}

//! docker-compose.yml is valid (checked offline with the PyPI docker-compose 1.29.2, which
//! needs no Docker daemon), publishes every port on the host's loopback only, and runs esmd
//! with a config that loads under the environment compose gives it.
//!
//! The tool comes from `scripts/compose-deps.sh` (target/test-tools/compose-venv) or
//! `$ESMD_DOCKER_COMPOSE`. A missing tool fails the test: a skipped check looks like a passing
//! one.

use esmd::config::{Config, Format};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn docker_compose() -> PathBuf {
    if let Some(path) = std::env::var_os("ESMD_DOCKER_COMPOSE") {
        return PathBuf::from(path);
    }
    root().join("target/test-tools/compose-venv/bin/docker-compose")
}

/// `docker-compose config` of the repository's file: validated, then resolved to plain YAML.
fn resolved_compose() -> Value {
    let bin = docker_compose();
    assert!(
        bin.is_file(),
        "docker-compose not found at {}: run `bash scripts/compose-deps.sh` first (scripts/test.sh does; or set ESMD_DOCKER_COMPOSE)",
        bin.display()
    );
    let file = root().join("docker-compose.yml");
    let run = |args: &[&str]| {
        let out = Command::new(&bin)
            .arg("-f")
            .arg(&file)
            .args(args)
            .current_dir(root())
            // Interpolation in the file must not depend on the caller's environment.
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let quiet = run(&["config", "-q"]);
    assert!(quiet.is_empty(), "config -q printed {}", String::from_utf8_lossy(&quiet));
    let yaml = run(&["config"]);
    serde_norway::from_slice(&yaml).unwrap_or_else(|e| panic!("docker-compose config output is not YAML: {e}"))
}

#[test]
fn compose_file_is_valid_and_loopback_only() {
    let compose = resolved_compose();
    let services = compose["services"].as_object().expect("services");
    for name in ["esmd", "kafka", "rabbitmq", "aws", "function"] {
        assert!(services.contains_key(name), "service {name} is missing");
    }
    assert!(services["esmd"]["build"].is_object(), "esmd is built from the repository");
    assert!(services["kafka"]["image"].as_str().unwrap_or_default().starts_with("apache/kafka:"));
    let roles = services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"].as_str().unwrap_or_default();
    assert!(roles.contains("broker") && roles.contains("controller"), "Kafka runs in KRaft mode: {roles}");
    assert!(services["rabbitmq"]["image"].as_str().unwrap_or_default().starts_with("rabbitmq:3-management"));
    assert!(services["aws"]["image"].as_str().unwrap_or_default().starts_with("motoserver/moto:"));

    let mut published = 0;
    for (name, service) in services {
        for port in service["ports"].as_array().into_iter().flatten() {
            // 1.29 prints the short form `host_ip:published:target/proto`.
            let text = port.as_str().map(str::to_string).unwrap_or_else(|| port.to_string());
            assert!(text.starts_with("127.0.0.1:"), "service {name} publishes {text} beyond the loopback interface");
            published += 1;
        }
    }
    assert!(published >= 5, "only {published} published ports");
}

#[test]
fn compose_runs_esmd_with_a_config_that_loads() {
    let compose = resolved_compose();
    let esmd = &compose["services"]["esmd"];
    let command: Vec<&str> = esmd["command"].as_array().expect("command").iter().filter_map(Value::as_str).collect();
    let in_container = command.iter().skip_while(|a| **a != "-c").nth(1).expect("run -c <config>");
    let on_host = root().join("config").join(in_container.strip_prefix("/etc/esmd/").expect("config from ./config mounted at /etc/esmd"));
    let text = std::fs::read_to_string(&on_host).unwrap_or_else(|e| panic!("{}: {e}", on_host.display()));

    let env = esmd["environment"].as_object().cloned().unwrap_or_default();
    let lookup = |name: &str| env.get(name).and_then(Value::as_str).map(str::to_string);
    let cfg = Config::from_str_with_env(&text, Format::Toml, &lookup).unwrap_or_else(|e| panic!("{}:\n{e}", on_host.display()));
    // Inside the container the admin endpoint must listen beyond the container's loopback,
    // or the published port reaches nothing.
    assert_eq!(cfg.admin.listen.port(), 9464);
    assert!(cfg.admin.listen.ip().is_unspecified(), "admin.listen = {}", cfg.admin.listen);
    assert!(cfg.checkpoint.path.starts_with("/var/lib/esmd"), "state on the volume: {}", cfg.checkpoint.path.display());
    let esmd::config::FunctionConfig::Http(f) = &cfg.mappings[0].function else { panic!("http function") };
    assert_eq!(f.url, "http://function:8080/");
}

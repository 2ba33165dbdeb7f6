//! docker-compose.yml is valid (checked offline with the PyPI docker-compose 1.29.2, which
//! needs no Docker daemon), publishes every port on the host's loopback only, runs esmd with a
//! config that loads under the environment compose gives it, and exercises every default
//! connector: a mapping from each, its topic, queue, stream or table created by a one-shot
//! init service, and a seeder filling it. Every config a service runs passes the real
//! `esmd validate` in that service's environment.
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

/// Where a path inside a service's container is on the host, through its bind mounts (1.29
/// prints them `host:container[:mode]`, the host side absolute).
fn host_path(service: &Value, in_container: &str) -> Option<PathBuf> {
    let mut best: Option<(usize, PathBuf)> = None;
    for mount in service["volumes"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let mut parts = mount.split(':');
        let (Some(host), Some(target)) = (parts.next(), parts.next()) else { continue };
        if !host.starts_with('/') {
            continue; // a named volume: nothing of the repository's in it
        }
        let Ok(rest) = std::path::Path::new(in_container).strip_prefix(target) else { continue };
        if best.as_ref().is_none_or(|(len, _)| target.len() > *len) {
            best = Some((target.len(), PathBuf::from(host).join(rest)));
        }
    }
    best.map(|(_, p)| p)
}

/// A service's entrypoint and command, as one argument list.
fn argv(service: &Value) -> Vec<String> {
    let words = |v: &Value| v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>();
    let mut all = words(&service["entrypoint"]);
    all.extend(words(&service["command"]));
    all
}

fn environment(service: &Value) -> Vec<(String, String)> {
    let env = service["environment"].as_object().cloned().unwrap_or_default();
    env.into_iter().map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect()
}

fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().skip_while(|a| *a != name).nth(1).map(String::as_str)
}

/// A service that runs esmd: its name, the config it names, the environment it runs it in.
type EsmdService = (String, PathBuf, Vec<(String, String)>);

/// The services that run esmd from the repository's image: every `-c FILE` they name, with the
/// environment they run it in.
fn esmd_configs(compose: &Value) -> Vec<EsmdService> {
    let mut configs = Vec::new();
    for (name, service) in compose["services"].as_object().unwrap() {
        let args = argv(service);
        let Some(config) = option(&args, "-c").or_else(|| option(&args, "--config")) else { continue };
        let on_host = host_path(service, config).unwrap_or_else(|| panic!("service {name}: {config} is not in a bind mount of the repository"));
        configs.push((name.clone(), on_host, environment(service)));
    }
    configs
}

/// `esmd validate` (the real binary) of every config a compose service runs, in that service's
/// environment and nothing else: what the container would see, defaults of `${VAR:-…}` included.
#[test]
fn every_config_the_services_run_passes_esmd_validate() {
    let compose = resolved_compose();
    let configs = esmd_configs(&compose);
    assert!(configs.iter().any(|(name, _, _)| name == "esmd"), "esmd runs a config");
    for (name, file, env) in &configs {
        assert!(file.is_file(), "service {name}: {} does not exist", file.display());
        let out = Command::new(env!("CARGO_BIN_EXE_esmd"))
            .args(["validate", "-c"])
            .arg(file)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("esmd runs");
        assert!(
            out.status.success(),
            "service {name}: esmd validate -c {}:\n{}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": ok ("), "service {name}: {}", String::from_utf8_lossy(&out.stdout));
    }
}

/// The connectors built by default (Cargo.toml's default features), as source `type`s.
fn default_connectors() -> Vec<String> {
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let mut types: Vec<String> = manifest["features"]["default"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().replace('-', "_")).collect();
    types.sort();
    types
}

/// What a source reads, by the name the init services create it under: Kafka's topic, the
/// RabbitMQ queue, the SQS queue (its URL's last segment), the Kinesis stream, the DynamoDB
/// table (of the stream's ARN).
fn resource_name(source: &toml::Value) -> String {
    let text = |key: &str| source[key].as_str().unwrap_or_else(|| panic!("source.{key}")).to_string();
    match source["type"].as_str().unwrap() {
        "kafka" => text("topic"),
        "rabbitmq" => text("queue"),
        "sqs" => text("queue_url").rsplit('/').next().unwrap().to_string(),
        "kinesis" => text("stream_arn").rsplit_once(":stream/").expect("stream_arn").1.to_string(),
        "dynamodb_streams" => text("stream_arn").split("/stream/").next().unwrap().rsplit_once(":table/").expect("stream_arn").1.to_string(),
        other => panic!("source type {other}: say what creates its stream or queue"),
    }
}

/// The compose stack exercises every default connector: the config esmd runs has a mapping
/// from each; a one-shot `init-*` service that esmd and the seeders wait for creates what each
/// mapping reads; a `seed-*` service fills each one through `esmd seed --mapping`.
#[test]
fn every_connector_has_a_mapping_its_source_created_and_a_seeder() {
    let compose = resolved_compose();
    let services = compose["services"].as_object().unwrap();
    let configs = esmd_configs(&compose);
    let (_, esmd_config, _) = configs.iter().find(|(name, _, _)| name == "esmd").expect("esmd runs a config");
    let text = std::fs::read_to_string(esmd_config).unwrap();
    let raw: toml::Value = toml::from_str(&text).unwrap();
    let mappings = raw["mappings"].as_array().expect("[[mappings]]");

    let mut types: Vec<String> = mappings.iter().map(|m| m["source"]["type"].as_str().unwrap().to_string()).collect();
    types.sort();
    types.dedup();
    assert_eq!(types, default_connectors(), "{}: one mapping per default connector", esmd_config.display());

    let waits_for = |service: &Value| -> Vec<String> {
        let deps = service["depends_on"].as_object().cloned().unwrap_or_default();
        deps.into_iter().filter(|(_, d)| d["condition"] == "service_completed_successfully").map(|(k, _)| k).collect()
    };
    let inits: Vec<&String> = services.keys().filter(|k| k.starts_with("init-")).collect();
    assert!(!inits.is_empty(), "no init-* services");
    let mut esmd_waits = waits_for(&services["esmd"]);
    esmd_waits.sort();
    assert_eq!(esmd_waits.iter().collect::<Vec<_>>(), inits, "esmd waits for every init service to complete");
    // What each init service runs: its arguments and any script of the repository they name,
    // on one line.
    let mut init_text: Vec<(String, String)> = Vec::new();
    for name in &inits {
        let service = &services[name.as_str()];
        assert!(service["ports"].is_null(), "{name} is one-shot: it publishes nothing");
        assert_eq!(service["restart"], "no", "{name} runs once");
        let mut text = String::new();
        for arg in argv(service) {
            if let Some(script) = arg.starts_with('/').then(|| host_path(service, &arg)).flatten() {
                text.push_str(&std::fs::read_to_string(&script).unwrap_or_else(|e| panic!("{name}: {}: {e}", script.display())));
            }
            text.push(' ');
            text.push_str(&arg);
        }
        text.push(' ');
        init_text.push((name.to_string(), text.replace(['\n', '\\'], " ").split_whitespace().collect::<Vec<_>>().join(" ") + " "));
    }

    for m in mappings {
        let name = m["name"].as_str().unwrap();
        let source = &m["source"];
        let resource = resource_name(source);
        // The command that creates it, not just any mention (a describe or a wait names it too).
        let creates: Vec<String> = match source["type"].as_str().unwrap() {
            "kafka" => vec!["kafka-topics.sh".into(), "--create".into(), format!("--topic {resource} ")],
            "rabbitmq" => vec!["declare queue".into(), format!("name={resource} ")],
            "sqs" => vec![format!("create-queue --queue-name {resource} ")],
            "kinesis" => vec![format!("create-stream --stream-name {resource} ")],
            "dynamodb_streams" => vec![format!("create-table --table-name {resource} "), "StreamEnabled=true".into()],
            _ => unreachable!(),
        };
        assert!(
            init_text.iter().any(|(_, text)| creates.iter().all(|c| text.contains(c.as_str()))),
            "mapping {name}: no init service creates {resource} (looked for {creates:?} in one of {:?})",
            init_text.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );

        let seeders: Vec<&String> = services
            .iter()
            .filter(|(_, s)| {
                let args = argv(s);
                args.first().map(String::as_str) == Some("seed") && option(&args, "--mapping") == Some(name)
            })
            .map(|(k, _)| k)
            .collect();
        assert_eq!(seeders.len(), 1, "mapping {name}: one seed service, not {seeders:?}");
        let seeder = &services[seeders[0].as_str()];
        let mut waits = waits_for(seeder);
        waits.sort();
        assert_eq!(waits.iter().collect::<Vec<_>>(), inits, "{}: seeds only once every init service completed", seeders[0]);
        let seed_config = host_path(seeder, option(&argv(seeder), "-c").expect("seed -c")).unwrap();
        assert_eq!(&seed_config, esmd_config, "{} seeds the mapping esmd drains", seeders[0]);
    }

    // The broker's user is the one the mapping logs in as.
    let esmd_env = &services["esmd"]["environment"];
    let broker_env = &services["rabbitmq"]["environment"];
    assert_eq!(esmd_env["RABBITMQ_USER"], broker_env["RABBITMQ_DEFAULT_USER"]);
    assert_eq!(esmd_env["RABBITMQ_PASSWORD"], broker_env["RABBITMQ_DEFAULT_PASS"]);
    assert!(text.contains("${RABBITMQ_USER") && text.contains("${RABBITMQ_PASSWORD}"), "the RabbitMQ mapping reads its credentials from the environment");
}

//! deploy/kubernetes/ holds manifests ops can apply as they are (after changing the
//! placeholders). Checked offline:
//!
//! - every file passes `kubernetes-validate --strict` (PyPI, pinned in scripts/test-deps.sh)
//!   against the Kubernetes versions in [`KUBERNETES_VERSIONS`], from the JSON schemas the
//!   package ships: no cluster, no network; a resource whose kind has no schema fails here,
//!   although the tool only warns about it;
//! - each Deployment's ConfigMap holds an `esmd.toml` that esmd's own loader accepts under the
//!   environment the Deployment gives the container (values, Secret keys, downward API);
//! - the Deployments and the config agree: probes on the admin port the config listens on,
//!   a grace period above the shutdown timeout, state on a writable volume, a fleet's
//!   instance id from the pod's name, a Service with the admin port for Prometheus.
//!
//! The tool comes from `scripts/test-deps.sh` (target/test-tools/venv) or
//! `$ESMD_KUBERNETES_VALIDATE`. A missing tool fails the test: a skipped check looks like a
//! passing one.

use esmd::config::{CheckpointKind, Config, Format};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Validated against each: the oldest minor version still commonly run, and the newest the
/// pinned kubernetes-validate ships.
const KUBERNETES_VERSIONS: &[&str] = &["1.30", "1.37"];

/// The files this test expects; any other YAML file in the folder is validated too.
const MANIFESTS: &[&str] = &["queues-kafka.yaml", "streams-dynamodb.yaml"];

/// Where the config file is mounted and what the ConfigMap key is called.
const CONFIG_KEY: &str = "esmd.toml";

/// Sources that share their work out among several consumers themselves (consumer groups,
/// competing consumers): several replicas with the embedded store are fine for them. Other
/// stream sources need `[checkpoint] type = "dynamodb"` for more than one replica.
const SELF_BALANCING_SOURCES: &[&str] = &["kafka", "sqs", "rabbitmq"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy_dir() -> PathBuf {
    root().join("deploy/kubernetes")
}

fn kubernetes_validate() -> PathBuf {
    if let Some(path) = std::env::var_os("ESMD_KUBERNETES_VALIDATE") {
        return PathBuf::from(path);
    }
    root().join("target/test-tools/venv/bin/kubernetes-validate")
}

/// Every YAML file in deploy/kubernetes/, sorted.
fn manifest_files() -> Vec<PathBuf> {
    let dir = deploy_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

/// The non-empty documents of a multi-document YAML file.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

fn name_of(resource: &Value) -> String {
    format!("{}/{}", resource["kind"].as_str().unwrap_or("?"), resource["metadata"]["name"].as_str().unwrap_or("?"))
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str().unwrap_or_else(|| panic!("{what}: expected a string, got {v}"))
}

#[test]
fn the_expected_manifests_are_there() {
    let names: Vec<String> = manifest_files().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in MANIFESTS {
        assert!(names.iter().any(|n| n == expected), "deploy/kubernetes/{expected} is missing (found {names:?})");
    }
}

#[test]
fn manifests_pass_kubernetes_validate_strict() {
    let bin = kubernetes_validate();
    assert!(
        bin.is_file(),
        "kubernetes-validate not found at {}: run `bash scripts/test-deps.sh` first (scripts/test.sh does; or set ESMD_KUBERNETES_VALIDATE)",
        bin.display()
    );
    let files = manifest_files();
    assert!(!files.is_empty(), "no manifests in {}", deploy_dir().display());
    let resources: usize = files.iter().map(|f| documents(f).len()).sum();

    let mut cmd = Command::new(&bin);
    cmd.arg("--strict");
    for version in KUBERNETES_VERSIONS {
        cmd.args(["--kubernetes-version", version]);
    }
    let out = cmd
        .args(&files)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; run `bash scripts/test-deps.sh`", bin.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("{} exited with {}:\n{stdout}{}", bin.display(), out.status, String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{report}");

    // It exits 0 after only warning about a kind it has no schema for (a typo in `kind` or
    // `apiVersion`): every resource must have passed, against every version.
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    let not_passed: Vec<&&str> = lines.iter().filter(|l| !(l.starts_with("INFO ") && l.contains(" passed for resource "))).collect();
    assert!(not_passed.is_empty(), "not a pass: {not_passed:#?}\n{report}");
    assert_eq!(lines.len(), resources * KUBERNETES_VERSIONS.len(), "one pass per resource and version expected\n{report}");
    for version in KUBERNETES_VERSIONS {
        let passed = lines.iter().filter(|l| l.ends_with(&format!(" against version {version}"))).count();
        assert_eq!(passed, resources, "resources validated against {version}\n{report}");
    }
}

/// One Deployment, checked against its ConfigMap, Secrets and Service (in the same file).
struct Checked {
    file: String,
    deployment: String,
    config: Config,
}

/// The environment the container gets: literal values, Secret keys from the Secret in the
/// same file, and the downward API with a pod name like the ones a Deployment gives.
fn container_env(docs: &[Value], deployment: &str, container: &Value) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let name = str_of(&var["name"], "env[].name").to_string();
        let value = if let Some(v) = var["value"].as_str() {
            v.to_string()
        } else if let Some(field) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match field {
                "metadata.name" => format!("{deployment}-7c9d8f6b5d-x2x4q"),
                "metadata.namespace" => "default".to_string(),
                other => panic!("{deployment}: env {name}: add a stub for fieldRef {other} to this test"),
            }
        } else if var["valueFrom"]["secretKeyRef"].is_object() {
            let r = &var["valueFrom"]["secretKeyRef"];
            let (secret, key) = (str_of(&r["name"], "secretKeyRef.name"), str_of(&r["key"], "secretKeyRef.key"));
            let s = find(docs, "Secret", secret)
                .unwrap_or_else(|| panic!("{deployment}: env {name} reads Secret {secret}, which the file does not define"));
            let value = s["stringData"][key].as_str().map(str::to_string).or_else(|| {
                use base64::Engine;
                let b64 = s["data"][key].as_str()?;
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).ok()?).ok()
            });
            value.unwrap_or_else(|| panic!("{deployment}: env {name} reads key {key:?} of Secret {secret}, which has no such key"))
        } else {
            panic!("{deployment}: env {name}: add its kind of valueFrom to this test: {var}")
        };
        env.insert(name, value);
    }
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let secret = str_of(&from["secretRef"]["name"], "envFrom[].secretRef.name");
        // Optional extras (static AWS keys) that the config itself does not reference.
        assert!(
            from["secretRef"]["optional"] == true || find(docs, "Secret", secret).is_some(),
            "{deployment}: envFrom Secret {secret} is neither optional nor defined"
        );
    }
    env
}

/// The port a probe or Service names, resolved against the container's ports.
fn port_number(container: &Value, port: &Value, what: &str) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = str_of(port, what);
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("{what}: the container has no port named {name:?}"))
}

fn check_deployment(file: &str, docs: &[Value], d: &Value) -> Checked {
    let deployment = d["metadata"]["name"].as_str().expect("metadata.name").to_string();
    let at = format!("{file}: Deployment {deployment}");
    assert_eq!(d["spec"]["replicas"], 3, "{at}: replicas");
    let pod = &d["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap_or_else(|| panic!("{at}: no containers"));
    let c = containers.iter().find(|c| c["name"] == "esmd").unwrap_or_else(|| panic!("{at}: no container named esmd"));

    // The config: the ConfigMap mounted where `esmd run -c` reads it.
    let command: Vec<&str> =
        c["command"].as_array().into_iter().flatten().chain(c["args"].as_array().into_iter().flatten()).filter_map(Value::as_str).collect();
    let run = command.iter().position(|a| *a == "run").unwrap_or_else(|| panic!("{at}: command {command:?} is not `esmd run -c …`"));
    assert_eq!(command.get(run + 1), Some(&"-c"), "{at}: command {command:?}");
    let config_file = *command.get(run + 2).unwrap_or_else(|| panic!("{at}: command {command:?} names no config"));
    assert_eq!(config_file, "/etc/esmd/esmd.toml", "{at}");
    let mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
    let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
    let volume = |name: &Value| volumes.iter().find(|v| v["name"] == *name).unwrap_or_else(|| panic!("{at}: no volume {name}")).clone();
    let config_mount = mounts
        .iter()
        .find(|m| config_file.starts_with(&format!("{}/", str_of(&m["mountPath"], "mountPath"))))
        .unwrap_or_else(|| panic!("{at}: nothing mounted at {config_file}"));
    let config_volume = volume(&config_mount["name"]);
    let config_map_name = str_of(&config_volume["configMap"]["name"], "configMap.name");
    // With `items`, the file is the item's path; without, every key is a file.
    let key = match config_volume["configMap"]["items"].as_array() {
        Some(items) => {
            let file_name = Path::new(config_file).file_name().unwrap().to_str().unwrap();
            let item =
                items.iter().find(|i| i["path"] == file_name).unwrap_or_else(|| panic!("{at}: ConfigMap volume has no item {file_name}"));
            str_of(&item["key"], "items[].key").to_string()
        }
        None => CONFIG_KEY.to_string(),
    };
    assert_eq!(key, CONFIG_KEY, "{at}");
    let config_map =
        find(docs, "ConfigMap", config_map_name).unwrap_or_else(|| panic!("{at}: ConfigMap {config_map_name} is not in the file"));
    let text = str_of(&config_map["data"][CONFIG_KEY], "ConfigMap data.esmd.toml");

    let env = container_env(docs, &deployment, c);
    let config = Config::from_str_with_env(text, Format::Toml, &|name| env.get(name).cloned()).unwrap_or_else(|e| {
        let names: Vec<&String> = env.keys().collect();
        panic!("{at}: ConfigMap {config_map_name}'s {CONFIG_KEY} does not load with the Deployment's environment {names:?}:\n{e}")
    });
    assert!(!config.mappings.is_empty(), "{at}: no mappings");

    // The admin endpoint: on every interface, on the container port named admin.
    let admin = config.admin.listen;
    assert!(admin.ip().is_unspecified(), "{at}: admin.listen = {admin}: probes and Prometheus cannot reach a loopback address");
    let admin_port = port_number(c, &Value::from("admin"), &format!("{at}: ports"));
    assert_eq!(admin_port, u64::from(admin.port()), "{at}: container port admin vs admin.listen");
    // A startup probe is optional (the admin endpoint opens only once the sources are open).
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")] {
        if probe == "startupProbe" && c[probe].is_null() {
            continue;
        }
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{at}: {probe}");
        assert_eq!(port_number(c, &get["port"], &format!("{at}: {probe}.httpGet.port")), admin_port, "{at}: {probe} port");
    }

    // SIGTERM lets in-flight batches finish within shutdown_timeout_seconds; the kubelet must
    // not SIGKILL before that.
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    assert!(
        grace > config.shutdown_timeout_seconds,
        "{at}: terminationGracePeriodSeconds {grace} <= shutdown_timeout_seconds {}",
        config.shutdown_timeout_seconds
    );
    for m in &config.mappings {
        let t = m.function.timeout_seconds();
        assert!(
            t < config.shutdown_timeout_seconds,
            "{at}: mapping {}: a function timeout of {t} s outlasts shutdown_timeout_seconds: invocations running at SIGTERM would be abandoned",
            m.name
        );
    }

    // Hardening and sizing.
    let security = &c["securityContext"];
    assert!(security["runAsNonRoot"] == true || pod["securityContext"]["runAsNonRoot"] == true, "{at}: runAsNonRoot");
    assert_eq!(security["readOnlyRootFilesystem"], true, "{at}: readOnlyRootFilesystem");
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(c["resources"][bound][resource].is_string(), "{at}: resources.{bound}.{resource}");
        }
    }

    // Where esmd writes must be a volume: the root filesystem is read-only.
    let writable = |path: &Path| {
        mounts.iter().any(|m| {
            let v = volume(&m["name"]);
            path.starts_with(str_of(&m["mountPath"], "mountPath"))
                && m["readOnly"] != true
                && (v["emptyDir"].is_object() || v["persistentVolumeClaim"].is_object())
        })
    };
    match config.checkpoint.kind {
        CheckpointKind::Embedded => {
            let path = &config.checkpoint.path;
            assert!(writable(path), "{at}: checkpoint.path {} is not on a writable volume", path.display());
            // One store per replica: only sources that share out their work themselves.
            for m in &config.mappings {
                let source = m.source.type_name();
                assert!(
                    SELF_BALANCING_SOURCES.contains(&source),
                    "{at}: mapping {} ({source}) with the embedded store and 3 replicas: every replica would read every shard; use [checkpoint] type = \"dynamodb\"",
                    m.name
                );
            }
        }
        CheckpointKind::Dynamodb => {
            // Each replica's leaseOwner is its pod name, from the downward API.
            let pod_name = c["env"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == "POD_NAME")
                .unwrap_or_else(|| panic!("{at}: no POD_NAME in env"));
            assert_eq!(pod_name["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name", "{at}: POD_NAME from the downward API");
            assert_eq!(config.fleet.instance_id.as_deref(), Some(env["POD_NAME"].as_str()), "{at}: [fleet] instance_id = \"${{POD_NAME}}\"");
            assert!(config.checkpoint.create_table || config.checkpoint.table.is_some(), "{at}: lease table");
        }
    }

    // A ClusterIP Service on the admin port, selecting these pods, annotated for Prometheus.
    let labels = d["spec"]["template"]["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    let services: Vec<&Value> = docs
        .iter()
        .filter(|s| s["kind"] == "Service")
        .filter(|s| {
            let selector = s["spec"]["selector"].as_object();
            selector.is_some_and(|sel| !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
        })
        .collect();
    assert_eq!(services.len(), 1, "{at}: expected one Service selecting the pods (labels {labels:?})");
    let service = services[0];
    let svc = name_of(service);
    assert!(service["spec"]["type"].is_null() || service["spec"]["type"] == "ClusterIP", "{at}: {svc} type");
    let ports = service["spec"]["ports"].as_array().unwrap_or_else(|| panic!("{svc}: no ports"));
    assert!(
        ports.iter().any(|p| {
            let target = if p["targetPort"].is_null() { &p["port"] } else { &p["targetPort"] };
            port_number(c, target, &format!("{svc} targetPort")) == admin_port
        }),
        "{svc}: no port reaching the admin port {admin_port}"
    );
    let annotations = &service["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true", "{svc}");
    assert_eq!(annotations["prometheus.io/port"], admin_port.to_string(), "{svc}");
    assert_eq!(annotations["prometheus.io/path"], "/metrics", "{svc}");

    Checked { file: file.to_string(), deployment, config }
}

#[test]
fn deployments_run_esmd_with_configs_that_load() {
    let mut checked = Vec::new();
    for path in manifest_files() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let docs = documents(&path);
        let deployments: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Deployment").collect();
        assert!(!deployments.is_empty(), "{file}: no Deployment");
        // Every ConfigMap holds an esmd config, and some Deployment of the file runs it.
        for cm in docs.iter().filter(|d| d["kind"] == "ConfigMap") {
            assert!(cm["data"][CONFIG_KEY].is_string(), "{file}: {} has no {CONFIG_KEY}", name_of(cm));
            let used = deployments.iter().any(|d| {
                d["spec"]["template"]["spec"]["volumes"].as_array().into_iter().flatten().any(|v| v["configMap"]["name"] == cm["metadata"]["name"])
            });
            assert!(used, "{file}: no Deployment mounts {}", name_of(cm));
        }
        for d in deployments {
            checked.push(check_deployment(&file, &docs, d));
        }
    }

    let by_file = |file: &str| checked.iter().find(|c| c.file == file).unwrap_or_else(|| panic!("{file}: not checked"));
    let queues = by_file("queues-kafka.yaml");
    assert_eq!(queues.config.checkpoint.kind, CheckpointKind::Embedded, "{}", queues.deployment);
    let streams = by_file("streams-dynamodb.yaml");
    assert_eq!(streams.config.checkpoint.kind, CheckpointKind::Dynamodb, "{}", streams.deployment);
    assert!(streams.config.checkpoint.create_table, "{}: create_table", streams.deployment);
    assert!(streams.config.checkpoint.table.is_some() && streams.config.checkpoint.region.is_some(), "{}", streams.deployment);
    assert_eq!(streams.config.fleet.failover_time_seconds, 10, "{}", streams.deployment);
    assert!(streams.config.mappings.iter().all(|m| m.source.type_name() == "kinesis"), "{}: a Kinesis mapping", streams.deployment);
}

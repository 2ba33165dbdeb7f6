//! The Dockerfile, checked without a Docker engine: the build context holds everything the
//! build stage's `cargo build --release --locked` reads (every COPY source exists and passes
//! .dockerignore, and cargo finds every target and an up-to-date lockfile in exactly what is
//! copied); the runtime stage runs esmd as a non-root user with the state directory as its
//! volume; the HEALTHCHECK command, run on this machine, passes against a real `esmd run` and
//! fails when /healthz does not answer 200; and hadolint finds nothing.
//!
//! hadolint comes from `scripts/docker-deps.sh` (target/test-tools/docker-venv) or
//! `$ESMD_HADOLINT`. A missing tool fails the test: a skipped check looks like a passing one.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// A Dockerfile reader: enough of the syntax for this repository's file, and loud about the rest
// (parser directives, other escape characters), so a construct it does not know is not misread.

#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    /// Everything after the keyword, continuation lines joined with a space.
    args: String,
    line: usize,
}

#[derive(Debug)]
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> Vec<&Instruction> {
        self.instructions.iter().filter(|i| i.keyword == keyword).collect()
    }

    /// The one instruction of a kind that only its last occurrence counts for (USER, CMD, ...).
    fn last(&self, keyword: &str) -> &Instruction {
        self.all(keyword).pop().unwrap_or_else(|| panic!("stage {:?} ({}) has no {keyword}", self.name, self.image))
    }

    fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for i in self.all("ENV") {
            let words: Vec<&str> = i.args.split_whitespace().collect();
            assert!(!words.iter().any(|w| w.contains('"') || w.contains('\'')), "line {}: quoted ENV values are not read by this test", i.line);
            if words.first().is_some_and(|w| !w.contains('=')) {
                env.insert(words[0].to_string(), words[1..].join(" "));
            } else {
                for w in words {
                    let (k, v) = w.split_once('=').unwrap();
                    env.insert(k.to_string(), v.to_string());
                }
            }
        }
        env
    }

    fn workdir(&self) -> PathBuf {
        let mut dir = PathBuf::from("/");
        for i in self.all("WORKDIR") {
            dir = dir.join(i.args.trim());
        }
        dir
    }
}

fn parse_dockerfile(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let trimmed = raw.trim();
        if trimmed.starts_with('#') {
            let directive = trimmed.trim_start_matches('#').trim().to_ascii_lowercase();
            assert!(
                !(stages.is_empty() && pending.is_none() && (directive.starts_with("escape") || directive.starts_with("syntax"))),
                "line {line_no}: parser directives are not read by this test: {trimmed}"
            );
            // Comment lines inside a continuation are dropped by Docker too.
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        let (start, mut acc) = pending.take().unwrap_or((line_no, String::new()));
        if let Some(body) = raw.trim_end().strip_suffix('\\') {
            acc.push_str(body.trim());
            acc.push(' ');
            pending = Some((start, acc));
            continue;
        }
        acc.push_str(trimmed);
        let (keyword, args) = acc.split_once(char::is_whitespace).unwrap_or((&acc, ""));
        let instruction = Instruction { keyword: keyword.to_ascii_uppercase(), args: args.trim().to_string(), line: start };
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction.args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let name = match words.as_slice() {
                [_] => None,
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => panic!("line {start}: FROM {}", instruction.args),
            };
            stages.push(Stage { image: words[0].to_string(), name, instructions: Vec::new() });
        } else {
            stages.last_mut().unwrap_or_else(|| panic!("line {start}: {} before FROM", instruction.keyword)).instructions.push(instruction);
        }
    }
    assert!(pending.is_none(), "the Dockerfile ends inside a continuation");
    stages
}

/// `--flag=value` options at the start of an instruction's arguments, and the rest.
fn flags(args: &str) -> (BTreeMap<String, String>, String) {
    let mut flags = BTreeMap::new();
    let mut rest = args.trim_start();
    while let Some(after) = rest.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let (k, v) = after[..end].split_once('=').unwrap_or((&after[..end], ""));
        flags.insert(k.to_string(), v.to_string());
        rest = after[end..].trim_start();
    }
    (flags, rest.to_string())
}

/// The exec (JSON) form of CMD, ENTRYPOINT, VOLUME, HEALTHCHECK CMD; `None` for the shell form.
fn exec_form(args: &str) -> Option<Vec<String>> {
    let args = args.trim();
    if !args.starts_with('[') {
        return None;
    }
    Some(serde_json::from_str(args).unwrap_or_else(|e| panic!("not a JSON array ({e}): {args}")))
}

fn dockerfile() -> Vec<Stage> {
    let path = root().join("Dockerfile");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let stages = parse_dockerfile(&text);
    assert!(stages.len() >= 2, "a multi-stage build: a build stage and a runtime stage");
    stages
}

fn build_stage(stages: &[Stage]) -> &Stage {
    stages.iter().find(|s| s.name.as_deref() == Some("build")).expect("a stage named `build`")
}

fn runtime_stage(stages: &[Stage]) -> &Stage {
    stages.last().unwrap()
}

/// (sources, destination) of a COPY from the build context (not `--from` another stage).
fn context_copies(stage: &Stage) -> Vec<(Vec<String>, String, usize)> {
    let mut copies = Vec::new();
    for i in stage.all("COPY").into_iter().chain(stage.all("ADD")) {
        assert_eq!(i.keyword, "COPY", "line {}: ADD fetches and unpacks; COPY is what this build needs", i.line);
        let (flags, rest) = flags(&i.args);
        if flags.contains_key("from") {
            continue;
        }
        let mut words = exec_form(&rest).unwrap_or_else(|| rest.split_whitespace().map(str::to_string).collect());
        let dest = words.pop().unwrap_or_else(|| panic!("line {}: COPY without a destination", i.line));
        assert!(!words.is_empty(), "line {}: COPY without a source", i.line);
        copies.push((words, dest, i.line));
    }
    copies
}

// ---------------------------------------------------------------------------------------------
// .dockerignore, matched as Docker does: the last pattern that matches a path or one of its
// parent directories decides, `!` re-includes, `*` and `?` stay within one path element, and
// `**` spans any number of them.

struct DockerIgnore {
    patterns: Vec<(bool, Vec<String>)>,
}

impl DockerIgnore {
    fn load() -> Self {
        let path = root().join(".dockerignore");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut patterns = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (include, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            assert!(!pattern.contains(['[', '\\']), ".dockerignore: character classes and escapes are not read by this test: {line}");
            let parts: Vec<String> = pattern.trim_matches('/').split('/').filter(|p| !p.is_empty() && *p != ".").map(str::to_string).collect();
            patterns.push((include, parts));
        }
        DockerIgnore { patterns }
    }

    /// Whether `rel` (a path relative to the context, `/`-separated) is sent to the builder.
    fn sends(&self, rel: &str) -> bool {
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        let mut sent = true;
        for (include, pattern) in &self.patterns {
            let pattern: Vec<&str> = pattern.iter().map(String::as_str).collect();
            if (1..=parts.len()).any(|n| path_match(&pattern, &parts[..n])) {
                sent = *include;
            }
        }
        sent
    }
}

fn path_match(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => path_match(&pattern[1..], path) || (!path.is_empty() && path_match(pattern, &path[1..])),
        (Some(p), Some(s)) => glob(p.as_bytes(), s.as_bytes()) && path_match(&pattern[1..], &path[1..]),
        _ => false,
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) => a == b && glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Every file under `dir` (or `dir` itself), as paths relative to the repository.
fn files_under(rel: &Path) -> Vec<PathBuf> {
    let full = root().join(rel);
    if full.is_file() {
        return vec![rel.to_path_buf()];
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display())) {
        let entry = entry.unwrap();
        let child = rel.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            out.extend(files_under(&child));
        } else {
            out.push(child);
        }
    }
    out
}

fn slash(p: &Path) -> String {
    p.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

#[test]
fn dockerignore_matching_follows_docker() {
    let ignore = DockerIgnore { patterns: vec![(false, vec!["*".into()]), (true, vec!["src".into()]), (false, vec!["**".into(), "target".into()])] };
    assert!(ignore.sends("src/main.rs"));
    assert!(!ignore.sends("README.md"));
    assert!(!ignore.sends("tests/cli.rs"));
    assert!(!ignore.sends("src/target/x"));
    assert!(!ignore.sends("target/debug/esmd"));
    assert!(glob(b"*.rs", b"main.rs") && !glob(b"*.rs", b"main.rsx") && glob(b"a?c", b"abc"));
}

#[test]
fn every_copy_source_is_in_the_build_context() {
    let stages = dockerfile();
    let ignore = DockerIgnore::load();
    // The context must not carry the build's own output (gigabytes, and every change to it
    // would invalidate the cache).
    assert!(!ignore.sends("target/release/esmd"), ".dockerignore must leave target/ out");
    let mut copied = 0;
    for stage in &stages {
        for (sources, _, line) in context_copies(stage) {
            for source in sources {
                assert!(!source.contains(['*', '?', '[']) && !source.starts_with('/') && !source.contains(".."), "line {line}: COPY {source}: plain paths inside the context only");
                let rel = PathBuf::from(&source);
                assert!(root().join(&rel).exists(), "line {line}: COPY {source}: not in the repository");
                let rel_text = slash(&rel);
                assert!(ignore.sends(&rel_text), "line {line}: COPY {source}: excluded by .dockerignore");
                for file in files_under(&rel) {
                    let text = slash(&file);
                    // Build output inside a member is left out on purpose.
                    if file.components().any(|c| c.as_os_str() == "target") {
                        continue;
                    }
                    assert!(ignore.sends(&text), "line {line}: {text} (under COPY {source}) is excluded by .dockerignore");
                    copied += 1;
                }
            }
        }
    }
    assert!(copied > 10, "only {copied} files copied from the context");
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_file() {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("{} -> {}: {e}", from.display(), to.display()));
        return;
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "target" {
            continue;
        }
        copy_tree(&entry.path(), &to.join(entry.file_name()));
    }
}

/// (package, target kind, target name) of every target cargo would build: integration tests
/// and examples are left out, cargo build does not read them.
fn build_targets(manifest: &Path) -> BTreeSet<(String, String, String)> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--offline", "--format-version", "1", "--manifest-path"])
        .arg(manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata --manifest-path {}:\n{}", manifest.display(), String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut targets = BTreeSet::new();
    for package in meta["packages"].as_array().unwrap() {
        for target in package["targets"].as_array().unwrap() {
            for kind in target["kind"].as_array().unwrap().iter().filter_map(Value::as_str) {
                if kind != "test" && kind != "example" {
                    targets.insert((package["name"].as_str().unwrap().to_string(), kind.to_string(), target["name"].as_str().unwrap().to_string()));
                }
            }
        }
    }
    targets
}

/// The build stage's files, laid out as COPY would in WORKDIR, hold a workspace cargo can build
/// with `--locked`: a declared target whose file was not copied is dropped silently by `cargo
/// metadata` but fails `cargo build`, so the target lists are compared; `cargo tree --locked`
/// fails if Cargo.lock does not match the copied manifests.
#[test]
fn the_copied_files_are_a_workspace_cargo_builds_locked() {
    let stages = dockerfile();
    let build = build_stage(&stages);
    let workdir = build.workdir();
    let image = tempfile::tempdir().unwrap();
    for (sources, dest, line) in context_copies(build) {
        let dest = workdir.join(&dest);
        let rel = dest.strip_prefix(&workdir).unwrap_or_else(|_| panic!("line {line}: COPY into {} outside WORKDIR {}", dest.display(), workdir.display()));
        for source in sources {
            let from = root().join(&source);
            // COPY of a directory copies its contents; of files into a directory, the files.
            let to = if from.is_file() { image.path().join(rel).join(Path::new(&source).file_name().unwrap()) } else { image.path().join(rel) };
            copy_tree(&from, &to);
        }
    }
    let manifest = image.path().join("Cargo.toml");
    assert!(manifest.is_file(), "the build stage copies no Cargo.toml into WORKDIR {}", workdir.display());
    assert_eq!(build_targets(&manifest), build_targets(&root().join("Cargo.toml")), "targets cargo build needs are missing from what the Dockerfile copies");

    let out = Command::new(env!("CARGO"))
        .args(["tree", "--locked", "--offline", "--edges", "normal,build", "--prefix", "none", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree --locked on the copied workspace:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_build_stage_runs_exactly_cargo_build_release_locked() {
    let stages = dockerfile();
    let build = build_stage(&stages);
    let (version, flavour) = build.image.strip_prefix("rust:").and_then(|t| t.split_once('-')).unwrap_or_else(|| panic!("FROM rust:<version>-<debian>, not {}", build.image));
    // Pinned to a minor release, at or above the workspace's rust-version.
    let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap_or_else(|_| panic!("rust tag {version}"))).collect();
    assert!(parts.len() >= 2, "rust:{version}: pin at least major.minor");
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let msrv: Vec<u32> = manifest["workspace"]["package"]["rust-version"].as_str().unwrap().split('.').map(|p| p.parse().unwrap()).collect();
    assert!(parts[..2] >= msrv[..2], "rust:{version} is older than rust-version {msrv:?}");
    // The runtime stage's Debian: a binary built against a newer glibc does not start on it.
    assert_eq!(flavour, "bookworm");
    assert_eq!(runtime_stage(&stages).image, "debian:bookworm-slim");

    let runs: Vec<String> = build.all("RUN").iter().map(|i| flags(&i.args).1.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    let cargo: Vec<&String> = runs.iter().filter(|r| r.contains("cargo")).collect();
    assert_eq!(cargo, ["cargo build --release --locked"], "the build stage's cargo commands");

    // What the runtime stage takes is what that command produced.
    let runtime = runtime_stage(&stages);
    let from_build: Vec<(Vec<String>, String)> = runtime
        .all("COPY")
        .iter()
        .filter_map(|i| {
            let (flags, rest) = flags(&i.args);
            (flags.get("from").map(String::as_str) == Some("build")).then(|| {
                let mut words: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
                let dest = words.pop().unwrap();
                (words, dest)
            })
        })
        .collect();
    let binary = build.workdir().join("target/release/esmd");
    assert_eq!(from_build, [(vec![binary.display().to_string()], "/usr/local/bin/esmd".to_string())], "the runtime stage copies the release binary onto PATH");
}

fn compose_esmd() -> Value {
    let path = root().join("docker-compose.yml");
    let mut compose: Value = {
        let mut yaml: serde_norway::Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        yaml.apply_merge().unwrap();
        serde_json::to_value(yaml).unwrap()
    };
    compose["services"]["esmd"].take()
}

#[test]
fn the_runtime_stage_is_non_root_with_esmd_as_entrypoint_and_the_state_dir_as_volume() {
    let stages = dockerfile();
    let runtime = runtime_stage(&stages);

    let user = runtime.last("USER").args.trim().to_string();
    let uid = user.split(':').next().unwrap();
    // Numeric, so Kubernetes' runAsNonRoot can tell without reading /etc/passwd.
    let uid: u32 = uid.parse().unwrap_or_else(|_| panic!("USER {user}: a numeric uid"));
    assert_ne!(uid, 0, "USER {user} is root");
    assert!(
        runtime.all("RUN").iter().any(|i| i.args.contains("useradd") && i.args.contains(&format!("--uid {uid}"))),
        "no RUN creates the user with uid {uid}"
    );
    let last_user_line = runtime.last("USER").line;
    assert!(runtime.instructions.iter().all(|i| i.keyword != "RUN" || i.line < last_user_line), "RUN after USER runs as the unprivileged user: keep setup before it");

    assert_eq!(exec_form(&runtime.last("ENTRYPOINT").args), Some(vec!["esmd".to_string()]));
    let cmd = exec_form(&runtime.last("CMD").args).expect("CMD in exec form");
    assert_eq!(cmd.first().map(String::as_str), Some("run"), "the default command runs a config: {cmd:?}");

    let env = runtime.env();
    let state_dir = env.get("ESMD_STATE_DIR").expect("ENV ESMD_STATE_DIR");
    let volumes = exec_form(&runtime.last("VOLUME").args).unwrap_or_else(|| runtime.last("VOLUME").args.split_whitespace().map(str::to_string).collect());
    assert_eq!(volumes, std::slice::from_ref(state_dir), "VOLUME is ESMD_STATE_DIR");
    assert_eq!(runtime.workdir(), PathBuf::from(state_dir), "relative paths in a config land on the volume");
    assert!(runtime.all("RUN").iter().any(|i| i.args.contains(&format!("chown esmd:esmd {state_dir}"))), "{state_dir} belongs to esmd before the volume is declared");

    let listen = env.get("ESMD_ADMIN_LISTEN").expect("ENV ESMD_ADMIN_LISTEN");
    let port = listen.rsplit(':').next().unwrap();
    let exposed: Vec<String> = runtime.all("EXPOSE").iter().flat_map(|i| i.args.split_whitespace().map(str::to_string).collect::<Vec<_>>()).collect();
    assert_eq!(exposed, [port.to_string()], "EXPOSE the admin port of ESMD_ADMIN_LISTEN={listen}");

    // The compose stack keeps its state in the same place.
    let esmd = compose_esmd();
    assert_eq!(esmd["environment"]["ESMD_STATE_DIR"].as_str(), Some(state_dir.as_str()), "docker-compose.yml's ESMD_STATE_DIR");
    let mounts: Vec<&str> = esmd["volumes"].as_array().expect("esmd volumes").iter().filter_map(Value::as_str).collect();
    assert!(mounts.iter().any(|m| m.split(':').nth(1) == Some(state_dir.as_str())), "docker-compose.yml mounts a volume at {state_dir}: {mounts:?}");
}

// ---------------------------------------------------------------------------------------------
// The HEALTHCHECK, run here as the engine would run it in the container.

fn healthcheck_command() -> Vec<String> {
    let stages = dockerfile();
    let hc = runtime_stage(&stages).last("HEALTHCHECK");
    let (flags, rest) = flags(&hc.args);
    for key in ["interval", "timeout", "retries"] {
        assert!(flags.contains_key(key), "HEALTHCHECK --{key}: the defaults (30 s, 30 s, 3) are slow to notice a dead esmd");
    }
    let cmd = rest.strip_prefix("CMD").unwrap_or_else(|| panic!("HEALTHCHECK CMD …, not {rest}"));
    let argv = exec_form(cmd).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), cmd.trim().to_string()]);
    assert!(argv.iter().any(|a| a.contains("/healthz")), "HEALTHCHECK asks /healthz: {argv:?}");
    // Only what debian:bookworm-slim has, plus what the runtime stage installs.
    let installed = runtime_stage(&stages).all("RUN").iter().map(|i| i.args.clone()).collect::<String>();
    assert!(["bash", "/bin/sh", "sh", "esmd"].contains(&argv[0].as_str()) || installed.contains(&argv[0]), "HEALTHCHECK runs {}, which the image does not have", argv[0]);
    argv
}

/// Runs the health check with the image's environment, `ESMD_ADMIN_LISTEN` aimed at `port`.
fn run_healthcheck(argv: &[String], port: u16) -> (bool, String) {
    let stages = dockerfile();
    let listen = runtime_stage(&stages).env()["ESMD_ADMIN_LISTEN"].clone();
    // The image's form of the address (all interfaces), with the test's port.
    let (host, _) = listen.rsplit_once(':').unwrap();
    let started = Instant::now();
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ESMD_ADMIN_LISTEN", format!("{host}:{port}"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
    assert!(started.elapsed() < Duration::from_secs(10), "the health check took {:?}", started.elapsed());
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `esmd run` with an empty in-memory stream, the admin endpoint on a free loopback port.
struct Esmd {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Esmd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("esmd.toml");
        std::fs::write(
            &config,
            format!(
                "[admin]\nlisten = \"127.0.0.1:0\"\n[checkpoint]\npath = \"{}\"\n[[mappings]]\nname = \"idle\"\nstarting_position = \"TRIM_HORIZON\"\nsource = {{ type = \"memory\", stream_name = \"idle\", shards = 1 }}\nfunction = {{ type = \"http\", url = \"http://127.0.0.1:9/\" }}\n",
                dir.path().join("state").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_esmd"))
            .args(["--log-format", "json", "run", "-c"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("esmd starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
                if let (Some(addr), true) = (event["addr"].as_str(), event["message"].as_str().unwrap_or_default().contains("admin endpoint")) {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let mut esmd = Esmd { child, port: 0, _dir: dir };
        let addr = rx.recv_timeout(Duration::from_secs(30)).expect("esmd logs its admin address");
        esmd.port = addr.parse::<std::net::SocketAddr>().unwrap_or_else(|e| panic!("{addr}: {e}")).port();
        esmd
    }
}

impl Drop for Esmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_healthcheck_passes_against_esmd_and_fails_without_it() {
    let argv = healthcheck_command();
    let mut esmd = Esmd::start();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, stderr) = run_healthcheck(&argv, esmd.port);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "the health check never passed against esmd on port {}: {stderr}", esmd.port);
        std::thread::sleep(Duration::from_millis(200));
    }
    let port = esmd.port;
    esmd.child.kill().unwrap();
    esmd.child.wait().unwrap();
    let (ok, _) = run_healthcheck(&argv, port);
    assert!(!ok, "the health check passed with esmd stopped");
}

#[test]
fn the_healthcheck_asks_healthz_and_fails_on_a_non_200_answer() {
    let argv = healthcheck_command();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        String::from_utf8_lossy(&request).into_owned()
    });
    let (ok, _) = run_healthcheck(&argv, port);
    let request = server.join().unwrap();
    assert_eq!(request.lines().next(), Some("GET /healthz HTTP/1.0"), "request: {request}");
    assert!(!ok, "the health check passed on a 503");
}

// ---------------------------------------------------------------------------------------------

fn hadolint() -> PathBuf {
    if let Some(path) = std::env::var_os("ESMD_HADOLINT") {
        return PathBuf::from(path);
    }
    root().join("target/test-tools/docker-venv/bin/hadolint")
}

#[test]
fn hadolint_finds_nothing() {
    let bin = hadolint();
    assert!(
        bin.is_file(),
        "hadolint not found at {}: run `bash scripts/docker-deps.sh` first (scripts/test.sh should; or set ESMD_HADOLINT)",
        bin.display()
    );
    for local in [".hadolint.yaml", ".hadolint.yml"] {
        assert!(!root().join(local).exists(), "{local}: keep exceptions next to the line they excuse, in the Dockerfile");
    }
    // The rules as shipped, at every severity: no ~/.config/hadolint.yaml or HADOLINT_*
    // variable of the machine relaxes them (an empty HOME; the repository has no
    // .hadolint.yaml). Exceptions belong in the Dockerfile, as `# hadolint ignore=` with a reason.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(&bin)
        .args(["--no-color", "--failure-threshold", "style", "Dockerfile"])
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(out.status.success(), "hadolint Dockerfile:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

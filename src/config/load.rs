//! The loading pipeline: parse → interpolate → read the top level and each mapping apart →
//! validate → attribute every issue to a mapping, key and line.

use super::error::{split_mapping, ConfigError, Issue, Problem};
use super::mapping::parse_mapping;
use super::parse::{self, deserialize_at, Document};
use esmd_api::config::range;
use super::{env, AdminConfig, AwsConfig, CheckpointConfig, CheckpointKind, Config, FleetConfig, Format, LogConfig};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The top-level keys besides `mappings`; each section is read on its own so that a problem in
/// one does not hide problems in another.
const TOP_LEVEL_KEYS: &[&str] = &["admin", "checkpoint", "log", "aws", "fleet", "shutdown_timeout_seconds", "mappings"];

struct TopLevel {
    admin: AdminConfig,
    checkpoint: CheckpointConfig,
    log: LogConfig,
    aws: AwsConfig,
    fleet: FleetConfig,
    shutdown_timeout_seconds: u64,
}

/// Reads one optional section; `None` if it is broken (the issue is recorded).
fn section<T: DeserializeOwned + Default>(value: Option<Value>, key: &str, issues: &mut Vec<Issue>) -> Option<T> {
    match value {
        None => Some(T::default()),
        Some(v) => deserialize_at(v, key).map_err(|e| issues.push(e)).ok(),
    }
}

fn top_level(root: &mut Map<String, Value>, issues: &mut Vec<Issue>) -> Option<TopLevel> {
    let admin = section::<AdminConfig>(root.remove("admin"), "admin", issues);
    let checkpoint = section::<CheckpointConfig>(root.remove("checkpoint"), "checkpoint", issues);
    let log = section::<LogConfig>(root.remove("log"), "log", issues);
    let aws = section::<AwsConfig>(root.remove("aws"), "aws", issues);
    let fleet = section::<FleetConfig>(root.remove("fleet"), "fleet", issues);
    let shutdown = match root.remove("shutdown_timeout_seconds") {
        None => Some(DEFAULT_SHUTDOWN_TIMEOUT_SECONDS),
        Some(v) => deserialize_at::<u64>(v, "shutdown_timeout_seconds").map_err(|e| issues.push(e)).ok(),
    };
    for key in root.keys().filter(|k| k.as_str() != "mappings") {
        let expected = TOP_LEVEL_KEYS.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
        issues.push(parse::keyed(key, format!("unknown key `{key}`, expected one of {expected}")));
    }
    top_level_rules(aws.as_ref(), checkpoint.as_ref(), shutdown, issues);
    if let Some(fleet) = &fleet {
        fleet_rules(fleet, issues);
    }
    Some(TopLevel { admin: admin?, checkpoint: checkpoint?, log: log?, aws: aws?, fleet: fleet?, shutdown_timeout_seconds: shutdown? })
}

const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS: u64 = 30;

pub(crate) fn load(text: &str, format: Format, env: env::EnvLookup<'_>, now_ms: i64) -> Result<Config, ConfigError> {
    let (mut doc, mut issues) = parse::parse(text, format).map_err(|(line, message)| ConfigError::Invalid {
        problems: vec![Problem { mapping: None, key: String::new(), line, message }],
    })?;

    let mut failures = Vec::new();
    env::interpolate_tree(&mut doc.root, "", env, &mut failures);
    issues.extend(failures.into_iter().map(|(path, e)| parse::keyed(&path, e)));

    // Names first, so that every message about a mapping can name it even when its own table
    // does not parse.
    let names: HashMap<usize, String> = match doc.root.get("mappings") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.get("name").and_then(Value::as_str).map(|n| (i, n.to_string())))
            .collect(),
        _ => HashMap::new(),
    };

    let mut root = match std::mem::take(&mut doc.root) {
        Value::Object(map) => map,
        // parse() only returns documents whose top level is a table.
        _ => Map::new(),
    };
    let mappings_value = root.remove("mappings");
    let top = top_level(&mut root, &mut issues);

    let mut mappings = Vec::new();
    match mappings_value {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, item) in items.into_iter().enumerate() {
                let (mapping, found) = parse_mapping(item, i, now_ms);
                issues.extend(found);
                mappings.extend(mapping.map(|m| (i, m)));
            }
            unique(&names, &mappings, &mut issues);
        }
        Some(Value::Array(_)) | None => {
            issues.push(Issue::new("mappings", "no [[mappings]]: a config needs at least one mapping"));
        }
        Some(_) => issues.push(Issue::new("mappings", "mappings: expected an array of tables ([[mappings]])")),
    }

    match top {
        Some(top) if issues.is_empty() => Ok(Config {
            admin: top.admin,
            checkpoint: top.checkpoint,
            log: top.log,
            aws: top.aws,
            fleet: top.fleet,
            shutdown_timeout_seconds: top.shutdown_timeout_seconds,
            mappings: mappings.into_iter().map(|(_, m)| m).collect(),
        }),
        _ => Err(ConfigError::Invalid { problems: attribute(issues, &doc, &names) }),
    }
}

fn top_level_rules(aws: Option<&AwsConfig>, checkpoint: Option<&CheckpointConfig>, shutdown: Option<u64>, issues: &mut Vec<Issue>) {
    if let Some(aws) = aws {
        esmd_aws::check_region(issues, "aws.region", &aws.region);
        let account = &aws.account;
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            issues.push(Issue::new("aws.account", format!("aws.account = {account:?} is not an account id (12 digits)")));
        }
    }
    if let Some(c) = checkpoint {
        checkpoint_rules(c, issues);
    }
    if let Some(seconds) = shutdown {
        range(issues, "shutdown_timeout_seconds", seconds.into(), 0, 3600);
    }
}

fn checkpoint_rules(c: &CheckpointConfig, issues: &mut Vec<Issue>) {
    match c.kind {
        CheckpointKind::Embedded => {
            if c.path.as_os_str().is_empty() {
                issues.push(Issue::new("checkpoint.path", "checkpoint.path is empty (a directory for the embedded store)"));
            }
            let dynamodb_only = [("table", c.table.is_some()), ("region", c.region.is_some()), ("endpoint_url", c.endpoint_url.is_some()), ("create_table", c.create_table)];
            for (key, _) in dynamodb_only.iter().filter(|(_, set)| *set) {
                issues.push(Issue::new(format!("checkpoint.{key}"), format!("checkpoint.{key} applies only to type = \"dynamodb\"")));
            }
        }
        CheckpointKind::Dynamodb => {
            match &c.table {
                None => issues.push(Issue::new("checkpoint.table", "checkpoint.table is required with type = \"dynamodb\" (the lease table's name)")),
                // DynamoDB's table naming rule.
                Some(t) => esmd_api::config::check_name(issues, "checkpoint.table", t, 255, "A-Za-z0-9_.-", |ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch)),
            }
            if c.table.as_ref().is_some_and(|t| t.len() < 3) {
                issues.push(Issue::new("checkpoint.table", "checkpoint.table: a DynamoDB table name has 3–255 characters"));
            }
            if let Some(r) = &c.region {
                esmd_aws::check_region(issues, "checkpoint.region", r);
            }
            if let Some(u) = &c.endpoint_url {
                esmd_aws::check_endpoint_url(issues, "checkpoint.endpoint_url", u);
            }
        }
    }
}

fn fleet_rules(fleet: &FleetConfig, issues: &mut Vec<Issue>) {
    range(issues, "fleet.failover_time_seconds", fleet.failover_time_seconds.into(), 3, 3600);
    if let Some(id) = &fleet.instance_id {
        // It becomes leaseOwner and a label: printable, no spaces.
        esmd_api::config::check_name(issues, "fleet.instance_id", id, 256, "printable ASCII without spaces", |c| c.is_ascii_graphic());
    }
}

/// Names and UUIDs must be unique: names key metrics and status, UUIDs key S3 failure objects.
/// Names are taken from every mapping that has one, parsed or not.
fn unique(names: &HashMap<usize, String>, mappings: &[(usize, super::MappingConfig)], issues: &mut Vec<Issue>) {
    let mut by_index: Vec<(&usize, &String)> = names.iter().collect();
    by_index.sort();
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (i, name) in by_index {
        match first_of.get(name.as_str()) {
            Some(first) => issues.push(Issue::new(
                format!("mappings[{i}].name"),
                format!("name = {name:?} is already used by mappings[{first}]; mapping names must be unique"),
            )),
            None => {
                first_of.insert(name, *i);
            }
        }
    }
    let mut uuids: HashMap<uuid::Uuid, usize> = HashMap::new();
    for (i, m) in mappings {
        match uuids.get(&m.uuid) {
            // Equal derived UUIDs mean equal names, reported above.
            Some(first) if names.get(first) != names.get(i) => issues.push(Issue::new(
                format!("mappings[{i}].uuid"),
                format!("uuid = \"{}\" is already used by mappings[{first}]; mapping UUIDs must be unique", m.uuid),
            )),
            Some(_) => {}
            None => {
                uuids.insert(m.uuid, *i);
            }
        }
    }
}

/// Problems in file order (where the format gives lines), then the ones without a line.
fn attribute(issues: Vec<Issue>, doc: &Document, names: &HashMap<usize, String>) -> Vec<Problem> {
    let mut problems: Vec<Problem> = issues
        .into_iter()
        .map(|issue| {
            let (index, key) = split_mapping(&issue.path);
            let mapping = index.map(|i| names.get(&i).cloned().unwrap_or_else(|| format!("mappings[{i}]")));
            Problem { mapping, key: key.to_string(), line: doc.line_of(&issue.path), message: issue.message }
        })
        .collect();
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    problems
}

#[cfg(test)]
mod tests {
    use super::super::{CheckpointKind, Config, Format, LogFormat, DEFAULT_ADMIN_LISTEN};
    use std::collections::HashMap;

    const MAPPING: &str = "[[mappings]]\nname = \"orders\"\nstarting_position = \"TRIM_HORIZON\"\n[mappings.source]\ntype = \"memory\"\nstream_name = \"orders-stream\"\n[mappings.function]\ntype = \"http\"\nurl = \"http://127.0.0.1:9000/\"\n";

    fn load(text: &str) -> Result<Config, super::ConfigError> {
        Config::from_str_with_env(text, Format::Toml, &|_| None)
    }

    fn problems(text: &str) -> Vec<String> {
        load(text).err().map(|e| e.problems().iter().map(|p| p.message.clone()).collect()).unwrap_or_default()
    }

    #[test]
    fn a_fleet_keeps_leases_in_dynamodb() {
        let cfg = load(&format!("[checkpoint]\ntype = \"dynamodb\"\ntable = \"esmd-leases\"\nregion = \"eu-west-1\"\ncreate_table = true\n[fleet]\ninstance_id = \"pod-1\"\n{MAPPING}")).unwrap();
        assert_eq!(cfg.checkpoint.kind, CheckpointKind::Dynamodb);
        assert_eq!((cfg.checkpoint.table.as_deref(), cfg.checkpoint.create_table), (Some("esmd-leases"), true));
        assert_eq!((cfg.fleet.instance_id(), cfg.fleet.failover_time_seconds), ("pod-1".to_string(), 10));
        // The default instance id is unique per process on a host.
        assert!(super::super::FleetConfig::default().instance_id().ends_with(&format!("-{}", std::process::id())));

        assert_eq!(problems(&format!("[checkpoint]\ntype = \"dynamodb\"\n{MAPPING}")), ["checkpoint.table is required with type = \"dynamodb\" (the lease table's name)"]);
        assert!(problems(&format!("[checkpoint]\ntype = \"dynamodb\"\ntable = \"a b\"\n{MAPPING}"))[0].starts_with("checkpoint.table = \"a b\" is not a valid name"));
        assert_eq!(problems(&format!("[checkpoint]\ntype = \"dynamodb\"\ntable = \"ab\"\n{MAPPING}")), ["checkpoint.table: a DynamoDB table name has 3–255 characters"]);
        assert_eq!(problems(&format!("[checkpoint]\ntable = \"t\"\ncreate_table = true\n{MAPPING}")), [
            "checkpoint.table applies only to type = \"dynamodb\"",
            "checkpoint.create_table applies only to type = \"dynamodb\"",
        ]);
        assert_eq!(problems(&format!("[checkpoint]\ntype = \"dynamodb\"\ntable = \"tbl\"\nendpoint_url = \"localhost\"\n[fleet]\nfailover_time_seconds = 1\n{MAPPING}")), [
            "checkpoint.endpoint_url = \"localhost\" is not an http(s) URL",
            "fleet.failover_time_seconds = 1 is out of range (3–3600)",
        ]);
        assert!(problems(&format!("[fleet]\ninstance_id = \"a b\"\n{MAPPING}"))[0].starts_with("fleet.instance_id"));
        assert!(problems(&format!("[fleet]\nfailover = 3\n{MAPPING}"))[0].contains("unknown field `failover`"));
    }

    fn err(text: &str) -> Vec<String> {
        match load(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.problems().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn top_level_defaults() {
        let cfg = load(MAPPING).unwrap();
        assert_eq!(cfg.admin.listen, DEFAULT_ADMIN_LISTEN);
        assert!(cfg.admin.listen.ip().is_loopback(), "admin binds loopback by default");
        assert_eq!(cfg.admin.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(cfg.checkpoint.kind, CheckpointKind::Embedded);
        assert_eq!(cfg.checkpoint.path, std::path::PathBuf::from("./esmd-state"));
        assert_eq!(cfg.log.format, LogFormat::Text);
        assert_eq!((cfg.aws.region.as_str(), cfg.aws.account.as_str()), ("us-east-1", "000000000000"));
        assert_eq!(cfg.shutdown_timeout_seconds, 30);
        assert_eq!(cfg.enabled_mappings().count(), 1);
        assert!(cfg.mapping("orders").is_some());
    }

    #[test]
    fn top_level_values() {
        let text = format!("shutdown_timeout_seconds = 5\n[admin]\nlisten = \"0.0.0.0:8080\"\n[checkpoint]\ntype = \"embedded\"\npath = \"/var/lib/esmd\"\n[log]\nformat = \"json\"\n[aws]\nregion = \"eu-west-1\"\naccount = \"123456789012\"\n{MAPPING}");
        let cfg = load(&text).unwrap();
        assert_eq!(cfg.admin.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(cfg.checkpoint.path, std::path::PathBuf::from("/var/lib/esmd"));
        assert_eq!(cfg.log.format, LogFormat::Json);
        assert_eq!(cfg.aws.region, "eu-west-1");
        assert_eq!(cfg.shutdown_timeout_seconds, 5);
    }

    #[test]
    fn unknown_keys_carry_path_and_line() {
        let p = err(&format!("[admin]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n{MAPPING}"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("line 3: admin.lisen: unknown field `lisen`, expected `listen` or `allow_remote`"), "{p:?}");

        let p = err(&format!("{MAPPING}[mappings.source.seed]\nrecords = 1\npoison = 2\n"));
        assert!(p[0].starts_with("line 12: mapping \"orders\": source.seed.poison: unknown field `poison`"), "{p:?}");

        let p = err(&MAPPING.replace("name = \"orders\"", "name = \"orders\"\nbatchsize = 3"));
        assert!(p[0].starts_with("line 3: mapping \"orders\": batchsize: unknown field `batchsize`, expected one of `batch_size`"), "{p:?}");

        let p = err(&format!("mapping = 1\n{MAPPING}"));
        assert!(p[0].starts_with("line 1: mapping: unknown key `mapping`, expected one of `admin`") && p[0].contains("`mappings`"), "{p:?}");

        let p = err(&format!("[checkpoint]\ntype = \"redis\"\n{MAPPING}"));
        assert!(p[0].starts_with("line 2: checkpoint.type: unknown variant `redis`, expected `embedded` or `dynamodb`"), "{p:?}");
    }

    #[test]
    fn env_interpolation_in_values() {
        let text = MAPPING
            .replace("http://127.0.0.1:9000/", "${FN_URL:-http://127.0.0.1:9000/}")
            .replace("[mappings.function]", "[mappings.function]\nheaders = { Authorization = \"Bearer ${API_TOKEN}\" }");
        let vars: HashMap<&str, &str> = [("API_TOKEN", "t0ken")].into();
        let cfg = Config::from_str_with_env(&text, Format::Toml, &|k| vars.get(k).map(|v| v.to_string())).unwrap();
        let super::super::FunctionConfig::Http(h) = &cfg.mappings[0].function else { panic!() };
        assert_eq!(h.url, "http://127.0.0.1:9000/");
        assert_eq!(h.headers["Authorization"].expose(), "Bearer t0ken");
        assert!(!format!("{cfg:?}").contains("t0ken"), "secrets never reach Debug output");

        let p = err(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("line 8: mapping \"orders\": function.headers.Authorization: environment variable API_TOKEN is not set"),
            "{p:?}"
        );
        let p = err(&format!("[admin]\nlisten = \"${{ADMIN}}\"\n{MAPPING}"));
        assert!(p[0].starts_with("line 2: admin.listen: environment variable ADMIN is not set"), "{p:?}");
    }

    #[test]
    fn allow_remote_is_read_and_warned_about() {
        let cfg = load(&format!("[admin]\nlisten = \"0.0.0.0:9464\"\n{MAPPING}")).unwrap();
        assert!(!cfg.admin.allow_remote);
        let warnings = cfg.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("admin.listen = 0.0.0.0:9464 is not a loopback address") && warnings[0].contains("admin.allow_remote"), "{warnings:?}");
        let cfg = load(&format!("[admin]\nlisten = \"0.0.0.0:9464\"\nallow_remote = true\n{MAPPING}")).unwrap();
        assert!(cfg.admin.allow_remote && cfg.warnings().is_empty());
        assert!(load(MAPPING).unwrap().warnings().is_empty(), "the default is loopback");
        let p = err(&format!("[admin]\nallow_remote = \"yes\"\n{MAPPING}"));
        assert!(p[0].starts_with("line 2: admin.allow_remote: invalid type: string \"yes\", expected a boolean"), "{p:?}");
    }

    #[cfg(feature = "rabbitmq")]
    #[test]
    fn a_destination_connection_password_stays_out_of_debug_output() {
        let text = MAPPING.replace(
            "name = \"orders\"",
            "name = \"orders\"\nmaximum_retry_attempts = 0\ndestination_config = { on_failure = { destination = \"rabbitmq:///dlq\", connection = { uri = \"amqp://127.0.0.1:5672\", username = \"u\", password = \"hunter2-dest\" } } }",
        );
        let cfg = load(&text).unwrap();
        let connection = cfg.mappings[0].params.destination_config.as_ref().and_then(|d| d.on_failure.as_ref()).and_then(|f| f.connection.as_ref());
        assert_eq!(connection.map(|c| c["password"].clone()), Some("hunter2-dest".into()), "kept as written for the connector");
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2") && debug.contains("\"password\": String(\"***\")"), "{debug}");
    }

    #[test]
    fn listen_must_be_an_address() {
        let p = err(&format!("[admin]\nlisten = \"localhost:9464\"\n{MAPPING}"));
        assert!(p[0].starts_with("line 2: admin.listen: invalid socket address"), "{p:?}");
    }

    #[test]
    fn duplicates_and_missing_mappings() {
        let p = err(&format!("{MAPPING}{MAPPING}"));
        assert_eq!(p, ["line 11: mapping \"orders\": name = \"orders\" is already used by mappings[0]; mapping names must be unique"]);
        let uuid = "uuid = \"2f1c1f44-3d2a-4a8e-9a61-7c1d1f0f3b11\"";
        let two = format!("{}{}", MAPPING.replace("name = \"orders\"", &format!("name = \"a\"\n{uuid}")), MAPPING.replace("name = \"orders\"", &format!("name = \"b\"\n{uuid}")));
        let two_p = err(&two); assert!(two_p[0].contains("mapping \"b\": uuid = \"2f1c1f44-3d2a-4a8e-9a61-7c1d1f0f3b11\" is already used by mappings[0]"), "{two_p:#?}");
        assert_eq!(err("[admin]\n"), ["no [[mappings]]: a config needs at least one mapping"]);
        assert!(err("mappings = 3\n")[0].contains("expected an array"));
    }

    #[test]
    fn problems_of_several_mappings_and_sections_are_all_listed() {
        let text = format!(
            "[aws]\naccount = \"1\"\n{}{}[[mappings]]\nsource = {{ type = \"memory\", stream_name = \"x\" }}\n",
            MAPPING.replace("name = \"orders\"", "name = \"a\"\nbatch_size = 20000"),
            MAPPING.replace("name = \"orders\"", "name = \"b\"\nparallelization_factor = 11"),
        );
        let p = err(&text);
        assert_eq!(p.len(), 6, "{p:#?}");
        assert!(p[0].contains("aws.account = \"1\" is not an account id"));
        assert!(p[1].contains("mapping \"a\": batch_size = 20000 is out of range (1–10000)"), "{p:#?}");
        assert!(p[2].contains("mapping \"b\": parallelization_factor = 11 is out of range (1–10)"));
        assert!(p[3].contains("mappings[2]: missing field `name`"), "{p:#?}");
        assert!(p[4].contains("mappings[2]: missing [mappings.function]"), "{p:#?}");
        // The rest of a half-broken mapping is still checked.
        assert!(p[5].contains("mappings[2]: starting_position is required"), "{p:#?}");
    }

    #[cfg(all(feature = "kinesis", feature = "dynamodb-streams"))]
    #[test]
    fn kinesis_and_dynamodb_sources_with_their_rules() {
        let mapping = |source: &str, start: &str| {
            format!("[[mappings]]\nname = \"k\"\nstarting_position = \"{start}\"\nstarting_position_timestamp = \"2024-01-01T00:00:00Z\"\nsource = {source}\nfunction = {{ type = \"http\", url = \"http://x/\" }}\n")
        };
        let kinesis = "{ type = \"kinesis\", stream_arn = \"arn:aws:kinesis:us-east-1:123456789012:stream/s\" }";
        let cfg = load(&mapping(kinesis, "AT_TIMESTAMP")).unwrap();
        assert_eq!(cfg.mappings[0].source.type_name(), "kinesis");
        let ddb = "{ type = \"dynamodb_streams\", stream_arn = \"arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000\" }";
        // AWS refuses AT_TIMESTAMP for DynamoDB Streams.
        let p = err(&mapping(ddb, "AT_TIMESTAMP"));
        assert!(p.iter().any(|m| m.contains("starting_position") && m.contains("AT_TIMESTAMP")), "{p:#?}");
        let p = err(&mapping("{ type = \"kinesis\", stream_name = \"s\", shards = 2 }", "LATEST"));
        assert!(p.iter().any(|m| m.contains("source.shards: unknown field `shards`")), "{p:#?}");
        let p = err(&mapping("{ type = \"dynamodb_streams\", stream_arn = \"arn:aws:dynamodb:us-east-1:1:table/t\" }", "LATEST"));
        assert!(p.iter().any(|m| m.contains("source.stream_arn = ")), "{p:#?}");
    }

    #[test]
    fn planned_sources_say_so_and_still_check_parameters() {
        // Whichever connector is still planned in this build (none once every one has landed).
        let Some(planned) = crate::connectors::planned().first().copied() else { return };
        let is_stream = crate::connectors::planned_profile(planned).is_some_and(|p| p.family == crate::config::Family::Stream);
        let line3 = if is_stream { "starting_position = \"LATEST\"" } else { "enabled = true" };
        let text = format!("[[mappings]]\nname = \"k\"\n{line3}\nbatch_size = 0\nsource = {{ type = \"{planned}\", stream_arn = \"a\" }}\nfunction = {{ type = \"http\", url = \"http://x/\" }}\n");
        let p = err(&text);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].starts_with("line 4: mapping \"k\": batch_size = 0 is out of range"), "{p:#?}");
        assert!(p[1].starts_with(&format!("line 5: mapping \"k\": source.type = \"{planned}\" is not available in this build")), "{p:#?}");
    }

    #[test]
    fn yaml_and_json_read_the_same_model() {
        let yaml = "admin:\n  listen: 127.0.0.1:9999\nmappings:\n  - name: orders\n    starting_position: TRIM_HORIZON\n    batch_size: 50\n    source:\n      type: memory\n      stream_name: orders-stream\n    function:\n      type: http\n      url: ${URL:-http://127.0.0.1:9000/}\n";
        let cfg = Config::from_str_with_env(yaml, Format::Yaml, &|_| None).unwrap();
        assert_eq!(cfg.admin.listen.port(), 9999);
        assert_eq!(cfg.mappings[0].params.batch_size, Some(50));
        let json = r#"{"mappings": [{"name": "orders", "starting_position": "TRIM_HORIZON", "source": {"type": "memory", "stream_name": "orders-stream"}, "function": {"type": "http", "url": "http://127.0.0.1:9000/"}}]}"#;
        let from_json = Config::from_str_with_env(json, Format::Json, &|_| None).unwrap();
        assert_eq!(from_json.mappings, load(MAPPING).unwrap().mappings);
        let e = Config::from_str_with_env(&json.replace("\"name\": \"orders\",", "\"name\": \"orders\", \"batch\": 1,"), Format::Json, &|_| None).unwrap_err();
        assert!(e.to_string().starts_with("mapping \"orders\": batch: unknown field `batch`"), "{e}");
    }

    #[test]
    fn syntax_errors_are_one_problem_with_a_line() {
        let e = load("[[mappings]\nname = 1\n").unwrap_err();
        assert_eq!(e.problems().len(), 1);
        assert_eq!(e.problems()[0].line, Some(1), "{e}");
    }
}

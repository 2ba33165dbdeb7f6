use super::*;
use crate::engine::settings::QueueExhausted;
use esmd_api::StartFrom;
use std::time::Duration;

const BASE: &str = r#"
[[mappings]]
name = "orders"
starting_position = "TRIM_HORIZON"
source = { type = "memory", stream_name = "orders", shards = 2 }
function = { type = "http", url = "http://127.0.0.1:9000/" }
"#;

fn parse(extra: &str) -> Result<Config, ConfigError> {
    Config::parse(&BASE.replace("[[mappings]]\nname = \"orders\"", &format!("[[mappings]]\nname = \"orders\"\n{extra}")), Format::Toml)
}

fn errors(extra: &str) -> Vec<String> {
    parse(extra).expect_err("should be rejected").0
}

#[test]
fn defaults_are_aws_defaults() {
    let cfg = parse("").unwrap();
    assert_eq!(cfg.admin.listen, "127.0.0.1:9464");
    let s = cfg.mappings[0].stream_settings().unwrap();
    assert_eq!(s.batch.batch_size, 100);
    assert_eq!(s.batch.window, Duration::ZERO);
    assert_eq!(s.batch.max_payload_bytes, 6 * 1024 * 1024);
    assert_eq!(s.parallelization_factor, 1);
    assert_eq!(s.maximum_record_age, None);
    assert_eq!(s.maximum_retry_attempts, None);
    assert!(!s.bisect_batch_on_function_error);
    assert!(!s.report_batch_item_failures);
    assert_eq!(s.starting_position, StartFrom::TrimHorizon);
}

#[test]
fn every_range_violation_names_mapping_and_key() {
    for (extra, needle) in [
        ("batch_size = 0", "mapping \"orders\": batch_size = 0 is out of range (1–10000)"),
        ("batch_size = 20000", "batch_size = 20000 is out of range (1–10000)"),
        ("maximum_batching_window_in_seconds = 301", "maximum_batching_window_in_seconds = 301 is out of range (0–300)"),
        ("parallelization_factor = 11", "parallelization_factor = 11 is out of range (1–10)"),
        ("maximum_record_age_in_seconds = 59", "maximum_record_age_in_seconds = 59 is out of range (-1, or 60–604800)"),
        ("maximum_record_age_in_seconds = 604801", "maximum_record_age_in_seconds = 604801 is out of range"),
        ("maximum_retry_attempts = -2", "maximum_retry_attempts = -2 is out of range (-1–10000)"),
        ("maximum_retry_attempts = 10001", "maximum_retry_attempts = 10001 is out of range"),
        ("tumbling_window_in_seconds = 901", "tumbling_window_in_seconds = 901 is out of range (0–900)"),
        ("function_response_types = [\"Nope\"]", "function_response_types contains \"Nope\""),
        ("max_payload_bytes = 7000000", "max_payload_bytes = 7000000 is out of range"),
        ("destination_config = { on_failure = { destination = \"arn:aws:dynamodb:x:1:table/t\" } }", "destination_config.on_failure.destination is invalid"),
        ("filter_criteria = { filters = [ { pattern = \"{\\\"a\\\": 1}\" } ] }", "filter_criteria is invalid"),
        ("scaling_config = { maximum_concurrency = 5 }", "scaling_config applies to queue sources only"),
    ] {
        let errs = errors(extra);
        assert!(errs.iter().any(|e| e.contains(needle) && e.starts_with("mapping \"orders\"")), "{extra}: {errs:?}");
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let errs = errors("batch_size = 0\nparallelization_factor = 0");
    assert_eq!(errs.len(), 2, "{errs:?}");
}

#[test]
fn starting_position_rules() {
    let cfg = BASE.replace("starting_position = \"TRIM_HORIZON\"\n", "");
    let e = Config::parse(&cfg, Format::Toml).unwrap_err().0;
    assert!(e[0].contains("starting_position is required"), "{e:?}");
    let at = BASE.replace("\"TRIM_HORIZON\"", "\"AT_TIMESTAMP\"");
    assert!(Config::parse(&at, Format::Toml).unwrap_err().0[0].contains("starting_position_timestamp is required"));
    let future = at.replace("source =", "starting_position_timestamp = \"2999-01-01T00:00:00Z\"\nsource =");
    assert!(Config::parse(&future, Format::Toml).unwrap_err().0[0].contains("in the future"));
    let ok = at.replace("source =", "starting_position_timestamp = 1700000000\nsource =");
    let cfg = Config::parse(&ok, Format::Toml).unwrap();
    assert_eq!(cfg.mappings[0].stream_settings().unwrap().starting_position, StartFrom::AtTimestamp(1_700_000_000_000));
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let e = errors("batchsize = 10");
    assert!(e[0].contains("unknown field `batchsize`"), "{e:?}");
    let e = Config::parse(&BASE.replace("shards = 2", "shards = 2, colour = 1"), Format::Toml).unwrap_err().0;
    assert!(e[0].contains("colour"), "{e:?}");
}

#[test]
fn duplicate_names_are_rejected() {
    let twice = format!("{BASE}{BASE}");
    let e = Config::parse(&twice, Format::Toml).unwrap_err().0;
    assert!(e.iter().any(|e| e.contains("name is used by another mapping")), "{e:?}");
}

const QUEUE: &str = r#"
[[mappings]]
name = "jobs"
source = { type = "memory_queue", queue_name = "work" }
function = { type = "http", url = "http://127.0.0.1:9000/" }
"#;

#[test]
fn queue_rules() {
    let q = |extra: &str| Config::parse(&QUEUE.replace("name = \"jobs\"", &format!("name = \"jobs\"\n{extra}")), Format::Toml);
    let cfg = q("").unwrap();
    let s = cfg.mappings[0].queue_settings().unwrap();
    assert_eq!(s.batch.batch_size, 10);
    assert_eq!(s.on_exhausted, QueueExhausted::Release);
    let e = q("batch_size = 11").unwrap_err().0;
    assert!(e.iter().any(|e| e.contains("needs maximum_batching_window_in_seconds ≥ 1")), "{e:?}");
    q("batch_size = 100\nmaximum_batching_window_in_seconds = 1").unwrap();
    assert!(q("parallelization_factor = 2").unwrap_err().0[0].contains("applies to stream sources only"));
    assert!(q("scaling_config = { maximum_concurrency = 1 }").unwrap_err().0[0].contains("(2–1000)"));
    assert!(q("on_exhausted = \"destination\"").unwrap_err().0[0].contains("needs destination_config"));
}

#[test]
fn env_interpolation_and_secret_redaction() {
    std::env::set_var("ESMD_TEST_TOKEN", "hunter2");
    let text = BASE.replace(
        "function = { type = \"http\", url = \"http://127.0.0.1:9000/\" }",
        "function = { type = \"http\", url = \"${ESMD_TEST_URL:-http://127.0.0.1:9001/}\", headers = { authorization = \"${ESMD_TEST_TOKEN}\" } }",
    );
    let cfg = Config::parse(&text, Format::Toml).unwrap();
    let FunctionConfig::Http(h) = &cfg.mappings[0].function else { panic!() };
    assert_eq!(h.url, "http://127.0.0.1:9001/");
    assert_eq!(h.headers["authorization"].expose(), "hunter2");
    assert!(!format!("{cfg:?}").contains("hunter2"), "secrets never reach Debug output");
    let missing = BASE.replace("stream_name = \"orders\"", "stream_name = \"${ESMD_TEST_MISSING}\"");
    assert!(Config::parse(&missing, Format::Toml).unwrap_err().0[0].contains("ESMD_TEST_MISSING is not set"));
}

#[test]
fn destinations_parse() {
    assert_eq!(DestinationKind::parse("file:///tmp/f.jsonl").unwrap(), DestinationKind::File("/tmp/f.jsonl".into()));
    assert_eq!(DestinationKind::parse("file:rel.jsonl").unwrap(), DestinationKind::File("rel.jsonl".into()));
    assert_eq!(DestinationKind::parse("arn:aws:sqs:us-east-1:1:q").unwrap().kind(), "sqs");
    assert_eq!(DestinationKind::parse("arn:aws:sns:us-east-1:1:t").unwrap().kind(), "sns");
    assert_eq!(DestinationKind::parse("arn:aws:s3:::bucket").unwrap().kind(), "s3");
    assert_eq!(DestinationKind::parse("kafka://failures").unwrap().kind(), "kafka");
    assert_eq!(DestinationKind::parse("rabbitmq://ex/key").unwrap().kind(), "rabbitmq");
    assert!(DestinationKind::parse("http://x").is_err());
}

//! The rules, checked without IO and all at once: every problem is collected, each message
//! names the key and, for numbers, the allowed range. Ranges and defaults are AWS's
//! (reference/aws-esm-spec.md); where esmd goes beyond AWS the rule says why.

use super::error::Issue;
use super::function::FunctionConfig;
use super::params::{MappingParams, OnExhausted, StartingPosition};
use super::source::SourceConfig;
use crate::engine::settings::MAX_PAYLOAD_BYTES;
use esmd_api::profile::{Family, SourceProfile};

pub(crate) use esmd_api::config::{check_name, range};

/// The keys that only make sense for ordered logs.
const STREAM_ONLY: &[&str] = &[
    "parallelization_factor",
    "starting_position",
    "starting_position_timestamp",
    "maximum_record_age_in_seconds",
    "bisect_batch_on_function_error",
    "tumbling_window_in_seconds",
    "max_read_ahead_bytes",
];

/// Every rule of one mapping. Paths are relative to the mapping. `name`, `source` and
/// `function` are `None` when they could not be read (or the source type has no connector in
/// this build); the rest is still checked, against the source type's profile.
pub(crate) fn mapping(
    name: Option<&str>,
    params: &MappingParams,
    profile: &SourceProfile,
    source: Option<&SourceConfig>,
    function: Option<&FunctionConfig>,
    now_ms: i64,
) -> Vec<Issue> {
    let mut issues = Vec::new();
    let issues_ref = &mut issues;
    // Names become metric labels, log fields and part of the derived UUID.
    if let Some(name) = name {
        check_name(issues_ref, "name", name, 64, "A-Za-z0-9_-", |c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    }
    if let Some(source) = source {
        source.validate(issues_ref);
    }
    if let Some(function) = function {
        function.validate(issues_ref);
    }
    batching(issues_ref, params, profile);
    match profile.family {
        Family::Stream => stream_rules(issues_ref, params, profile, now_ms),
        Family::Queue => queue_rules(issues_ref, params, profile, source),
    }
    if let Some(retries) = params.maximum_retry_attempts {
        range(issues_ref, "maximum_retry_attempts", retries.into(), -1, 10_000);
    }
    filters(issues_ref, params);
    destination(issues_ref, params, profile, source);
    issues
}

fn batching(issues: &mut Vec<Issue>, p: &MappingParams, profile: &SourceProfile) {
    if let Some(size) = p.batch_size {
        match profile.max_batch_size_reason {
            Some(reason) if !(1..=i64::from(profile.max_batch_size)).contains(&size) => issues.push(Issue::new(
                "batch_size",
                format!("batch_size = {size} is out of range for {reason} (1–{})", profile.max_batch_size),
            )),
            _ => range(issues, "batch_size", size.into(), 1, profile.max_batch_size.into()),
        }
    }
    if let Some(window) = p.maximum_batching_window_in_seconds {
        // `contains` is false for NaN too.
        if !(0.0..=300.0).contains(&window) {
            issues.push(Issue::new(
                "maximum_batching_window_in_seconds",
                format!("maximum_batching_window_in_seconds = {window} is out of range (0–300)"),
            ));
        }
    }
    // SQS: without a window the poller returns at most 10 messages, so AWS refuses larger
    // batches unless the mapping may wait at least a second to fill them.
    if profile.batch_over_10_needs_window {
        let size = p.batch_size.unwrap_or(profile.default_batch_size.into());
        let window = p.maximum_batching_window_in_seconds.unwrap_or(profile.default_window.as_secs_f64());
        if size > 10 && window < 1.0 {
            issues.push(Issue::new(
                "batch_size",
                format!(
                    "batch_size = {size} needs maximum_batching_window_in_seconds ≥ 1 for {} sources (without a window: batch_size 1–10)",
                    profile.type_name
                ),
            ));
        }
    }
    if let Some(bytes) = p.max_payload_bytes {
        range(issues, "max_payload_bytes", bytes.into(), 1, MAX_PAYLOAD_BYTES as i128);
    }
    if let Some(bytes) = p.max_read_ahead_bytes {
        // At least one full-size event, so a batch can always be read whole.
        range(issues, "max_read_ahead_bytes", bytes.into(), MAX_PAYLOAD_BYTES as i128, 1 << 40);
    }
    if let Some(rate) = p.max_invocations_per_second {
        if !(rate.is_finite() && (MIN_INVOCATION_RATE..=MAX_INVOCATION_RATE).contains(&rate)) {
            issues.push(Issue::new(
                "max_invocations_per_second",
                format!("max_invocations_per_second = {rate} is out of range ({MIN_INVOCATION_RATE}–{MAX_INVOCATION_RATE})"),
            ));
        }
    }
}

/// One invocation every 1,000 s at the slowest; a million a second is no limit in practice.
const MIN_INVOCATION_RATE: f64 = 0.001;
const MAX_INVOCATION_RATE: f64 = 1_000_000.0;

fn stream_rules(issues: &mut Vec<Issue>, p: &MappingParams, profile: &SourceProfile, now_ms: i64) {
    let t = profile.type_name;
    if p.scaling_config.is_some() {
        issues.push(Issue::new("scaling_config", format!("scaling_config applies only to queue sources; source type {t:?} is a stream")));
    }
    if let Some(on) = p.on_exhausted {
        issues.push(Issue::new(
            "on_exhausted",
            format!("on_exhausted = {:?} applies only to queue sources; a stream's given-up batches go to destination_config.on_failure", on.as_str()),
        ));
    }
    if let Some(factor) = p.parallelization_factor {
        if profile.supports_parallelization {
            range(issues, "parallelization_factor", factor.into(), 1, 10);
        } else {
            issues.push(Issue::new("parallelization_factor", format!("parallelization_factor is not supported by {t} sources")));
        }
    }
    match (p.starting_position, p.starting_position_timestamp) {
        (None, _) => issues.push(Issue::new(
            "starting_position",
            format!("starting_position is required for {t} sources (TRIM_HORIZON, LATEST or AT_TIMESTAMP)"),
        )),
        (Some(StartingPosition::AtTimestamp), _) if !profile.supports_at_timestamp => issues.push(Issue::new(
            "starting_position",
            format!("starting_position = AT_TIMESTAMP is not supported by {t} sources (TRIM_HORIZON or LATEST)"),
        )),
        (Some(StartingPosition::AtTimestamp), None) => issues.push(Issue::new(
            "starting_position_timestamp",
            "starting_position = AT_TIMESTAMP needs starting_position_timestamp (RFC 3339, like 2024-05-01T00:00:00Z, or epoch seconds)",
        )),
        (Some(StartingPosition::AtTimestamp), Some(ts)) if ts.0 > now_ms => issues.push(Issue::new(
            "starting_position_timestamp",
            format!("starting_position_timestamp = {} is in the future", esmd_api::time::iso_millis(ts.0)),
        )),
        (Some(other), Some(_)) if other != StartingPosition::AtTimestamp => issues.push(Issue::new(
            "starting_position_timestamp",
            format!("starting_position_timestamp is only allowed with starting_position = AT_TIMESTAMP (not {})", other.as_str()),
        )),
        _ => {}
    }
    if let Some(age) = p.maximum_record_age_in_seconds {
        if age != -1 && !(60..=604_800).contains(&age) {
            issues.push(Issue::new(
                "maximum_record_age_in_seconds",
                format!("maximum_record_age_in_seconds = {age} is out of range (-1 or 60–604800)"),
            ));
        }
    }
    if let Some(window) = p.tumbling_window_in_seconds {
        if profile.supports_tumbling_window {
            range(issues, "tumbling_window_in_seconds", window.into(), 0, 900);
            // One window state per shard, as AWS keeps it: concurrent lanes would each need
            // their own, and a function could not tell them apart.
            if (1..=900).contains(&window) && p.parallelization_factor.is_some_and(|f| f > 1) {
                issues.push(Issue::new(
                    "tumbling_window_in_seconds",
                    format!("tumbling_window_in_seconds = {window} needs parallelization_factor = 1 (a window keeps one state per shard)"),
                ));
            }
        } else {
            issues.push(Issue::new(
                "tumbling_window_in_seconds",
                format!("tumbling_window_in_seconds is not supported by {t} sources (kinesis, dynamodb_streams, memory)"),
            ));
        }
    }
}

fn queue_rules(issues: &mut Vec<Issue>, p: &MappingParams, profile: &SourceProfile, source: Option<&SourceConfig>) {
    let t = profile.type_name;
    let set = [
        p.parallelization_factor.is_some(),
        p.starting_position.is_some(),
        p.starting_position_timestamp.is_some(),
        p.maximum_record_age_in_seconds.is_some(),
        p.bisect_batch_on_function_error.is_some(),
        p.tumbling_window_in_seconds.is_some(),
        p.max_read_ahead_bytes.is_some(),
    ];
    for (key, _) in STREAM_ONLY.iter().zip(set).filter(|(_, set)| *set) {
        issues.push(Issue::new(
            *key,
            format!("{key} applies only to stream sources (kinesis, dynamodb_streams, kafka, memory); source type {t:?} is a queue"),
        ));
    }
    let ordered = source.is_some_and(|s| s.spec().ordered());
    if let Some(concurrency) = p.scaling_config.as_ref().and_then(|s| s.maximum_concurrency) {
        if ordered {
            issues.push(Issue::new(
                "scaling_config.maximum_concurrency",
                "scaling_config.maximum_concurrency does not apply with source.ordered = true (one batch at a time keeps the order)",
            ));
        } else if profile.supports_scaling_config {
            range(issues, "scaling_config.maximum_concurrency", concurrency.into(), 2, 1000);
        } else {
            issues.push(Issue::new(
                "scaling_config.maximum_concurrency",
                format!("scaling_config.maximum_concurrency is not supported by {t} sources (one consumer per mapping, as in AWS)"),
            ));
        }
    }
    let destination = p.on_failure_destination();
    match p.on_exhausted {
        Some(OnExhausted::Destination) if destination.is_none() => issues.push(Issue::new(
            "on_exhausted",
            "on_exhausted = \"destination\" needs destination_config.on_failure.destination",
        )),
        Some(OnExhausted::Destination) => {}
        _ if destination.is_some() => issues.push(Issue::new(
            "destination_config",
            "destination_config applies to queue sources only with on_exhausted = \"destination\" (otherwise failed messages go back to the queue and its redrive policy, as in AWS)",
        )),
        _ => {}
    }
    if let Some(on) = p.on_exhausted.filter(|on| *on != OnExhausted::Release) {
        if matches!(p.maximum_retry_attempts, None | Some(-1)) {
            issues.push(Issue::new(
                "maximum_retry_attempts",
                format!("on_exhausted = {:?} needs maximum_retry_attempts (0–10000): without a limit no message is ever exhausted", on.as_str()),
            ));
        }
    }
}

fn filters(issues: &mut Vec<Issue>, p: &MappingParams) {
    let Some(criteria) = &p.filter_criteria else { return };
    let count = criteria.filters.len();
    if count > esmd_filter::MAX_PATTERNS {
        issues.push(Issue::new(
            "filter_criteria.filters",
            format!("filter_criteria.filters has {count} patterns (at most {})", esmd_filter::MAX_PATTERNS),
        ));
    }
    for (i, filter) in criteria.filters.iter().enumerate() {
        let key = format!("filter_criteria.filters[{i}].pattern");
        let length = filter.pattern.0.chars().count();
        if length > esmd_filter::MAX_PATTERN_CHARS {
            issues.push(Issue::new(&key, format!("{key} is {length} characters long (at most {})", esmd_filter::MAX_PATTERN_CHARS)));
        } else if let Err(e) = esmd_filter::Pattern::compile(&filter.pattern.0) {
            // Compiled one by one (not FilterCriteria::compile, which stops at the first) so
            // every bad pattern is reported.
            issues.push(Issue::new(&key, format!("{key}: {e}")));
        }
    }
}

fn destination(issues: &mut Vec<Issue>, p: &MappingParams, profile: &SourceProfile, source: Option<&SourceConfig>) {
    let Some(destination) = p.on_failure_destination() else { return };
    let connection = p.destination_config.as_ref().and_then(|d| d.on_failure.as_ref()).and_then(|f| f.connection.as_ref());
    // The brokers' own rules: a connection's keys, loops back into the source.
    for connector in crate::connectors::with_destinations() {
        issues.extend(connector.check_destination(destination, connection, source.map(SourceConfig::spec)));
    }
    let has_connection = connection.is_some();
    let kind = destination.kind();
    if let Some(url) = p.destination_config.as_ref().and_then(|d| d.on_failure.as_ref()).and_then(|f| f.endpoint_url.as_deref()) {
        if matches!(kind, "sqs" | "sns" | "s3") {
            super::function::check_url(issues, "destination_config.on_failure.endpoint_url", url);
        } else {
            issues.push(Issue::new(
                "destination_config.on_failure.endpoint_url",
                format!("destination_config.on_failure.endpoint_url applies only to arn:aws:sqs, arn:aws:sns and arn:aws:s3 destinations (this one is {kind})"),
            ));
        }
    }
    if has_connection && kind != "rabbitmq" {
        issues.push(Issue::new(
            "destination_config.on_failure.connection",
            format!("destination_config.on_failure.connection applies only to rabbitmq:// destinations (this one is {kind})"),
        ));
    }
    if kind == "rabbitmq" && profile.broker_destination != Some(kind) && !has_connection {
        issues.push(Issue::new(
            "destination_config.on_failure.destination",
            format!(
                "destination_config.on_failure.destination = \"{destination}\": a rabbitmq destination of a {:?} mapping needs destination_config.on_failure.connection (uri, virtual_host, username, password)",
                profile.type_name
            ),
        ));
    } else if kind == "kafka" && profile.broker_destination != Some(kind) {
        issues.push(Issue::new(
            "destination_config.on_failure.destination",
            format!(
                "destination_config.on_failure.destination = \"{destination}\": {kind} destinations work only with a {kind} source (on the same broker); source type is {:?}",
                profile.type_name
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    /// Checks one mapping given as TOML lines after a memory-stream header, returns messages.
    fn stream(extra: &str) -> Vec<String> {
        let text = format!(
            "[[mappings]]\nname = \"orders\"\nstarting_position = \"TRIM_HORIZON\"\n{extra}\n[mappings.source]\ntype = \"memory\"\nstream_name = \"s\"\n[mappings.function]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/\"\n"
        );
        messages(&text)
    }

    fn queue(source_extra: &str, extra: &str) -> Vec<String> {
        let text = format!(
            "[[mappings]]\nname = \"orders\"\n{extra}\n[mappings.source]\ntype = \"memory_queue\"\nqueue_name = \"q\"\n{source_extra}\n[mappings.function]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/\"\n"
        );
        messages(&text)
    }

    fn messages(text: &str) -> Vec<String> {
        match Config::from_str_with_env(text, super::super::Format::Toml, &|_| None) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(|p| p.to_string()).collect(),
        }
    }

    fn one(problems: Vec<String>, expected: &str) {
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].contains(expected), "{:?} does not contain {expected:?}", problems[0]);
    }

    #[test]
    fn valid_baselines() {
        assert_eq!(stream(""), Vec::<String>::new());
        assert_eq!(queue("", ""), Vec::<String>::new());
    }

    #[test]
    fn every_range_names_the_key_and_range() {
        for (line, expected) in [
            ("batch_size = 20000", "mapping \"orders\": batch_size = 20000 is out of range (1–10000)"),
            ("batch_size = 0", "batch_size = 0 is out of range (1–10000)"),
            ("maximum_batching_window_in_seconds = 301", "maximum_batching_window_in_seconds = 301 is out of range (0–300)"),
            ("maximum_batching_window_in_seconds = -0.5", "maximum_batching_window_in_seconds = -0.5 is out of range (0–300)"),
            ("parallelization_factor = 11", "parallelization_factor = 11 is out of range (1–10)"),
            ("parallelization_factor = 0", "parallelization_factor = 0 is out of range (1–10)"),
            ("maximum_record_age_in_seconds = 59", "maximum_record_age_in_seconds = 59 is out of range (-1 or 60–604800)"),
            ("maximum_record_age_in_seconds = 604801", "maximum_record_age_in_seconds = 604801 is out of range (-1 or 60–604800)"),
            ("maximum_record_age_in_seconds = -2", "maximum_record_age_in_seconds = -2 is out of range (-1 or 60–604800)"),
            ("maximum_retry_attempts = 10001", "maximum_retry_attempts = 10001 is out of range (-1–10000)"),
            ("maximum_retry_attempts = -2", "maximum_retry_attempts = -2 is out of range (-1–10000)"),
            ("tumbling_window_in_seconds = 901", "tumbling_window_in_seconds = 901 is out of range (0–900)"),
            ("max_payload_bytes = 6291457", "max_payload_bytes = 6291457 is out of range (1–6291456)"),
            ("max_payload_bytes = 0", "max_payload_bytes = 0 is out of range (1–6291456)"),
            ("max_read_ahead_bytes = 1000", "max_read_ahead_bytes = 1000 is out of range (6291456–1099511627776)"),
            ("max_invocations_per_second = 0", "max_invocations_per_second = 0 is out of range (0.001–1000000)"),
            ("max_invocations_per_second = -5", "max_invocations_per_second = -5 is out of range (0.001–1000000)"),
            ("max_invocations_per_second = inf", "mappings[0].max_invocations_per_second: inf is not a finite number"),
        ] {
            one(stream(line), expected);
        }
        one(queue("", "scaling_config = { maximum_concurrency = 1 }"), "scaling_config.maximum_concurrency = 1 is out of range (2–1000)");
        one(queue("", "scaling_config = { maximum_concurrency = 1001 }"), "scaling_config.maximum_concurrency = 1001 is out of range (2–1000)");
    }

    #[test]
    fn boundaries_are_accepted() {
        for line in [
            "batch_size = 1",
            "batch_size = 10000",
            "maximum_batching_window_in_seconds = 300",
            "maximum_batching_window_in_seconds = 0",
            "parallelization_factor = 10",
            "maximum_record_age_in_seconds = -1",
            "maximum_record_age_in_seconds = 60",
            "maximum_record_age_in_seconds = 604800",
            "maximum_retry_attempts = -1",
            "maximum_retry_attempts = 10000",
            "tumbling_window_in_seconds = 0",
            "max_payload_bytes = 6291456",
            "max_invocations_per_second = 0.001",
            "max_invocations_per_second = 2.5",
            "max_invocations_per_second = 1000000",
            "function_response_types = [\"ReportBatchItemFailures\"]",
            "function_response_types = []",
            "bisect_batch_on_function_error = true",
        ] {
            assert_eq!(stream(line), Vec::<String>::new(), "{line}");
        }
        assert_eq!(queue("", "scaling_config = { maximum_concurrency = 2 }"), Vec::<String>::new());
        assert_eq!(queue("", "scaling_config = { maximum_concurrency = 1000 }"), Vec::<String>::new());
    }

    #[test]
    fn starting_positions() {
        let text = |pos: &str| {
            format!("[[mappings]]\nname = \"o\"\n{pos}\n[mappings.source]\ntype = \"memory\"\nstream_name = \"s\"\n[mappings.function]\ntype = \"http\"\nurl = \"http://x/\"\n")
        };
        one(messages(&text("")), "starting_position is required for memory sources (TRIM_HORIZON, LATEST or AT_TIMESTAMP)");
        one(messages(&text("starting_position = \"AT_TIMESTAMP\"")), "needs starting_position_timestamp");
        one(
            messages(&text("starting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = \"2999-01-01T00:00:00Z\"")),
            "starting_position_timestamp = 2999-01-01T00:00:00.000Z is in the future",
        );
        assert!(messages(&text("starting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = \"2024-01-01T00:00:00Z\"")).is_empty());
        assert!(messages(&text("starting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = 2024-01-01T00:00:00+02:00")).is_empty());
        assert!(messages(&text("starting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = 1700000000")).is_empty());
        one(messages(&text("starting_position = \"LATEST\"\nstarting_position_timestamp = 1700000000")), "only allowed with starting_position = AT_TIMESTAMP");
        one(messages(&text("starting_position = \"latest\"")), "unknown variant `latest`, expected one of `TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`");
        one(messages(&text("starting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = \"yesterday\"")), "starting_position_timestamp");
    }

    #[test]
    fn tumbling_windows_range_and_one_lane() {
        assert!(stream("tumbling_window_in_seconds = 60").is_empty());
        assert!(stream("tumbling_window_in_seconds = 900\nparallelization_factor = 1").is_empty());
        one(stream("tumbling_window_in_seconds = 901"), "tumbling_window_in_seconds = 901 is out of range (0–900)");
        one(
            stream("tumbling_window_in_seconds = 60\nparallelization_factor = 2"),
            "tumbling_window_in_seconds = 60 needs parallelization_factor = 1 (a window keeps one state per shard)",
        );
    }

    #[test]
    fn function_response_types_only_report_batch_item_failures() {
        one(stream("function_response_types = [\"ReportBatchItemFailure\"]"), "function_response_types[0]: unknown variant `ReportBatchItemFailure`, expected `ReportBatchItemFailures`");
    }

    #[test]
    fn stream_only_keys_on_a_queue_are_rejected_clearly() {
        for key in ["parallelization_factor = 2", "starting_position = \"LATEST\"", "maximum_record_age_in_seconds = 60", "bisect_batch_on_function_error = true", "tumbling_window_in_seconds = 30"] {
            let name = key.split(' ').next().unwrap_or_default();
            one(queue("", key), &format!("{name} applies only to stream sources (kinesis, dynamodb_streams, kafka, memory); source type \"memory_queue\" is a queue"));
        }
        one(stream("scaling_config = { maximum_concurrency = 5 }"), "scaling_config applies only to queue sources");
        one(stream("on_exhausted = \"destination\""), "on_exhausted = \"destination\" applies only to queue sources");
    }

    #[test]
    fn sqs_window_rule_and_fifo_limit() {
        one(queue("", "batch_size = 50"), "batch_size = 50 needs maximum_batching_window_in_seconds ≥ 1 for memory_queue sources");
        one(queue("", "batch_size = 50\nmaximum_batching_window_in_seconds = 0.5"), "needs maximum_batching_window_in_seconds ≥ 1");
        assert!(queue("", "batch_size = 50\nmaximum_batching_window_in_seconds = 1").is_empty());
        assert!(queue("", "batch_size = 10").is_empty());
        one(
            queue("fifo = true", "batch_size = 20\nmaximum_batching_window_in_seconds = 5").into_iter().filter(|m| !m.contains("queue_name")).collect(),
            "batch_size = 20 is out of range for a FIFO queue (1–10)",
        );
    }

    /// The same rules apply to `type = "sqs"`; FIFO is told by the queue URL.
    #[cfg(feature = "sqs")]
    #[test]
    fn sqs_source_window_rule_and_fifo_limit() {
        let sqs = |url: &str, extra: &str| {
            messages(&format!(
                "[[mappings]]\nname = \"jobs\"\n{extra}\n[mappings.source]\ntype = \"sqs\"\nqueue_url = \"{url}\"\n[mappings.function]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/\"\n"
            ))
        };
        let url = "http://127.0.0.1:5000/123456789012/jobs";
        assert!(sqs(url, "").is_empty());
        one(sqs(url, "batch_size = 100"), "batch_size = 100 needs maximum_batching_window_in_seconds ≥ 1 for sqs sources");
        assert!(sqs(url, "batch_size = 100\nmaximum_batching_window_in_seconds = 1").is_empty());
        let fifo = "http://127.0.0.1:5000/123456789012/jobs.fifo";
        one(sqs(fifo, "batch_size = 20\nmaximum_batching_window_in_seconds = 5"), "batch_size = 20 is out of range for a FIFO queue (1–10)");
        one(sqs("http://127.0.0.1:5000/jobs", ""), "source.queue_url");
        one(sqs(url, "scaling_config = { maximum_concurrency = 1 }"), "scaling_config.maximum_concurrency = 1 is out of range (2–1000)");
    }

    #[test]
    fn queue_exhaustion_rules() {
        let dest = "destination_config = { on_failure = { destination = \"file:failures.jsonl\" } }";
        assert!(queue("", &format!("on_exhausted = \"destination\"\nmaximum_retry_attempts = 3\n{dest}")).is_empty());
        assert!(queue("", "on_exhausted = \"dead_letter\"\nmaximum_retry_attempts = 0").is_empty());
        assert!(queue("", "on_exhausted = \"release\"").is_empty());
        one(queue("", "on_exhausted = \"destination\"\nmaximum_retry_attempts = 3"), "needs destination_config.on_failure.destination");
        one(queue("", &format!("maximum_retry_attempts = 3\n{dest}")), "destination_config applies to queue sources only with on_exhausted = \"destination\"");
        one(queue("", "on_exhausted = \"dead_letter\""), "on_exhausted = \"dead_letter\" needs maximum_retry_attempts (0–10000)");
        one(queue("", "on_exhausted = \"drop\""), "on_exhausted: unknown variant `drop`");
    }

    #[test]
    fn filters_are_counted_measured_and_compiled() {
        let ok = "{\"a\": [1]}";
        let eleven = vec![format!("{{ pattern = '{ok}' }}"); 11].join(", ");
        one(stream(&format!("filter_criteria = {{ filters = [{eleven}] }}")), "filter_criteria.filters has 11 patterns (at most 10)");
        let long = format!("{{\"a\": [\"{}\"]}}", "x".repeat(4100));
        one(stream(&format!("filter_criteria = {{ filters = [{{ pattern = '{long}' }}] }}")), "filter_criteria.filters[0].pattern is 4111 characters long (at most 4096)");
        let problems = stream("filter_criteria = { filters = [{ pattern = '{\"a\": [1]}' }, { pattern = '{\"a\": 1}' }, { pattern = 'nope' }] }");
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].contains("filter_criteria.filters[1].pattern: Invalid pattern"), "{problems:#?}");
        assert!(problems[1].contains("filter_criteria.filters[2].pattern"), "{problems:#?}");
        // A table is accepted and compiled as its JSON text.
        assert!(stream("filter_criteria = { filters = [{ pattern = { data = { kind = [\"order\"] } } }] }").is_empty());
    }

    #[test]
    fn broker_destinations_need_their_broker() {
        one(stream("destination_config = { on_failure = { destination = \"kafka://dlq\" } }"), "kafka destinations work only with a kafka source");
        one(stream("destination_config = { on_failure = { destination = \"rabbitmq://x/y\" } }"), "a rabbitmq destination of a \"memory\" mapping needs destination_config.on_failure.connection");
        assert!(stream("destination_config = { on_failure = { destination = \"arn:aws:sqs:us-east-1:123456789012:dlq\" } }").is_empty());
        one(stream("destination_config = { on_failure = { destination = \"s3://bucket\" } }"), "destination_config.on_failure.destination: \"s3://bucket\" is not a destination");
        assert!(stream("destination_config = { on_failure = { destination = \"arn:aws:s3:::bkt\", endpoint_url = \"http://127.0.0.1:5000\" } }").is_empty());
        one(stream("destination_config = { on_failure = { destination = \"arn:aws:sns:us-east-1:123456789012:t\", endpoint_url = \"127.0.0.1\" } }"), "destination_config.on_failure.endpoint_url is not an http(s) URL");
        one(stream("destination_config = { on_failure = { destination = \"file:x.jsonl\", endpoint_url = \"http://h\" } }"), "endpoint_url applies only to arn:aws:sqs");
    }

    #[test]
    fn all_problems_are_collected() {
        let problems = stream("batch_size = 0\nparallelization_factor = 20\nmaximum_retry_attempts = -5\ntumbling_window_in_seconds = 1000");
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }

    #[test]
    fn names() {
        let text = |name: &str| format!("[[mappings]]\nname = \"{name}\"\nstarting_position = \"LATEST\"\nsource = {{ type = \"memory\", stream_name = \"s\" }}\nfunction = {{ type = \"http\", url = \"http://x/\" }}\n");
        assert!(messages(&text("orders_v2-eu")).is_empty());
        one(messages(&text("orders v2")), "name = \"orders v2\" is not a valid name (1–64 characters of [A-Za-z0-9_-])");
        one(messages(&text("")), "name = \"\" is not a valid name");
        one(messages(&text(&"x".repeat(65))), "is not a valid name");
    }
}

//! `esmd import`: AWS CLI output and CloudFormation / SAM templates (tests/fixtures/import/)
//! become esmd configs that the real binary's `esmd validate` accepts; what esmd does not
//! support is warned about, values a template cannot give are reported with their key path,
//! bad input fails with the key path and writes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn esmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_esmd"))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import").join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `esmd import <inputs> -o <dir>/out.toml <extra>`.
fn import(dir: &Path, inputs: &[&str], extra: &[&str]) -> (Output, PathBuf) {
    let out = dir.join("out.toml");
    let output = esmd().arg("import").args(inputs.iter().map(|i| fixture(i))).arg("-o").arg(&out).args(extra).output().unwrap();
    (output, out)
}

/// The variables a config reads without a default (`${NAME}`), with values of their shape.
fn variables(config: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = config;
    while let Some(at) = rest.find("${") {
        let after = &rest[at + 2..];
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        if !name.contains(":-") && !out.iter().any(|(n, _)| n == name) {
            let value = if name.ends_with("_BOOTSTRAP_SERVERS") { "b-1.orders.abc123.c2.kafka.us-east-1.amazonaws.com:9096" } else { "not-a-real-secret" };
            out.push((name.to_string(), value.to_string()));
        }
        rest = &after[close..];
    }
    out
}

/// `esmd validate -c config` with the config's variables set; returns stdout.
fn validate(config: &Path) -> String {
    let body = std::fs::read_to_string(config).unwrap();
    let out = esmd().args(["validate", "-c"]).arg(config).envs(variables(&body)).output().unwrap();
    assert!(out.status.success(), "{}: {}{}\n{body}", config.display(), text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// Imports `inputs`, checks the import succeeded and its output validates; returns the
/// config (parsed), its text and the import's stderr.
fn imported(inputs: &[&str], extra: &[&str]) -> (toml::Table, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (output, path) = import(dir.path(), inputs, extra);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{inputs:?}: {stderr}");
    assert!(output.stdout.is_empty(), "with -o nothing goes to stdout");
    let body = std::fs::read_to_string(&path).unwrap();
    let ok = validate(&path);
    assert!(ok.contains(": ok ("), "{ok}");
    (toml::from_str(&body).unwrap_or_else(|e| panic!("{e}\n{body}")), body, stderr)
}

fn mappings(config: &toml::Table) -> &Vec<toml::Value> {
    config["mappings"].as_array().unwrap()
}

fn get<'a>(value: &'a toml::Value, path: &str) -> &'a toml::Value {
    path.split('.').fold(value, |v, key| v.get(key).unwrap_or_else(|| panic!("{path}: no {key} in {v}")))
}

fn s<'a>(value: &'a toml::Value, path: &str) -> &'a str {
    get(value, path).as_str().unwrap_or_else(|| panic!("{path} is not text"))
}

fn n(value: &toml::Value, path: &str) -> i64 {
    get(value, path).as_integer().unwrap_or_else(|| panic!("{path} is not an integer"))
}

fn missing(value: &toml::Value, key: &str) {
    assert!(value.get(key).is_none(), "{key} should not be written: {value}");
}

#[test]
fn sqs_maps_every_supported_key_and_warns_about_the_rest() {
    let (cfg, body, stderr) = imported(&["sqs.json"], &[]);
    let m = &mappings(&cfg)[0];
    assert_eq!(s(m, "name"), "order-processor-order-events");
    // AWS's UUID is kept: S3 failure objects are keyed by it.
    assert_eq!(s(m, "uuid"), "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d");
    assert_eq!((n(m, "batch_size"), n(m, "maximum_batching_window_in_seconds")), (50, 2));
    assert_eq!(get(m, "enabled").as_bool(), Some(true));
    assert_eq!(get(m, "function_response_types").as_array().unwrap()[0].as_str(), Some("ReportBatchItemFailures"));
    assert_eq!(n(m, "scaling_config.maximum_concurrency"), 10);
    assert!(s(&get(m, "filter_criteria.filters").as_array().unwrap()[0], "pattern").contains("order.created"));
    assert_eq!(s(m, "source.type"), "sqs");
    assert_eq!(s(m, "source.queue_url"), "https://sqs.us-east-1.amazonaws.com/123456789012/order-events");
    assert_eq!(s(m, "function.type"), "lambda");
    assert_eq!(s(m, "function.function_name"), "arn:aws:lambda:us-east-1:123456789012:function:order-processor");
    for key in ["KMSKeyArn", "MetricsConfig", "ProvisionedPollerConfig"] {
        assert!(stderr.contains(&format!("warning: {}: {key}: ", fixture("sqs.json").display())), "{key} not warned about:\n{stderr}");
        assert!(body.contains(&format!("# warning: {key}: ")), "{key} not in the file's comments:\n{body}");
    }
    // Read-only state is neither imported nor warned about.
    for key in ["LastModified", "StateTransitionReason", "EventSourceMappingArn"] {
        assert!(!stderr.contains(key), "{key}: {stderr}");
    }
    assert!(stderr.contains("Lambda Invoke API"), "{stderr}");
    assert!(stderr.contains("1 mapping written"), "{stderr}");
}

#[test]
fn sqs_fifo_disabled_with_an_alias() {
    let (cfg, _, _) = imported(&["sqs-fifo.json"], &[]);
    let m = &mappings(&cfg)[0];
    assert_eq!(s(m, "name"), "invoice-writer-invoices-fifo");
    assert_eq!(get(m, "enabled").as_bool(), Some(false));
    assert_eq!(n(m, "batch_size"), 10);
    assert_eq!(s(m, "source.queue_url"), "https://sqs.eu-west-1.amazonaws.com/123456789012/invoices.fifo");
    assert_eq!(s(m, "function.function_name"), "arn:aws:lambda:eu-west-1:123456789012:function:invoice-writer:live");
    missing(m, "function_response_types");
}

#[test]
fn kinesis_keeps_the_failure_handling() {
    let (cfg, _, stderr) = imported(&["kinesis.json"], &[]);
    let m = &mappings(&cfg)[0];
    assert_eq!(s(m, "starting_position"), "AT_TIMESTAMP");
    assert_eq!(s(m, "starting_position_timestamp"), "2024-11-01T00:00:00Z");
    assert_eq!((n(m, "batch_size"), n(m, "parallelization_factor"), n(m, "maximum_batching_window_in_seconds")), (500, 4, 5));
    assert_eq!((n(m, "maximum_record_age_in_seconds"), n(m, "maximum_retry_attempts")), (21600, 5));
    assert_eq!(get(m, "bisect_batch_on_function_error").as_bool(), Some(true));
    assert_eq!(s(m, "destination_config.on_failure.destination"), "arn:aws:sqs:us-east-1:123456789012:clickstream-failures");
    assert_eq!(s(m, "source.stream_arn"), "arn:aws:kinesis:us-east-1:123456789012:stream/clickstream");
    assert!(stderr.contains("MetricsConfig"), "{stderr}");
}

#[test]
fn dynamodb_streams_with_an_s3_destination_and_a_tumbling_window() {
    let (cfg, _, _) = imported(&["dynamodb-streams.json"], &[]);
    let m = &mappings(&cfg)[0];
    assert_eq!(s(m, "source.type"), "dynamodb_streams");
    assert_eq!(s(m, "source.stream_arn"), "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-06-12T10:15:30.123");
    assert_eq!(s(m, "destination_config.on_failure.destination"), "arn:aws:s3:::orders-esm-failures");
    assert_eq!((n(m, "tumbling_window_in_seconds"), n(m, "parallelization_factor"), n(m, "maximum_retry_attempts")), (60, 1, 3));
    assert!(s(&get(m, "filter_criteria.filters").as_array().unwrap()[0], "pattern").contains("\"NewImage\""));
}

#[test]
fn msk_reads_its_brokers_and_credentials_from_the_environment() {
    let (cfg, body, stderr) = imported(&["msk.json"], &[]);
    let m = &mappings(&cfg)[0];
    assert_eq!(s(m, "source.type"), "kafka");
    assert_eq!(s(m, "source.cluster_arn"), "arn:aws:kafka:us-east-1:123456789012:cluster/orders-cluster/5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d-2");
    assert_eq!(get(m, "source.bootstrap_servers").as_array().unwrap()[0].as_str(), Some("${ORDER_INDEXER_ORDERS_BOOTSTRAP_SERVERS}"));
    assert_eq!((s(m, "source.topic"), s(m, "source.consumer_group_id")), ("orders", "order-indexer"));
    assert_eq!(s(m, "source.sasl.mechanism"), "SCRAM-SHA-512");
    assert_eq!(s(m, "source.sasl.password"), "${ORDER_INDEXER_ORDERS_PASSWORD}");
    assert_eq!(get(m, "source.tls.enabled").as_bool(), Some(true));
    assert_eq!(s(m, "destination_config.on_failure.destination"), "arn:aws:sqs:us-east-1:123456789012:order-indexer-failures");
    assert!(stderr.contains("aws kafka get-bootstrap-brokers"), "{stderr}");
    // The Glue registry, decoding values to JSON.
    assert_eq!(s(m, "source.schema_registry.uri"), "arn:aws:glue:us-east-1:123456789012:registry/orders");
    assert_eq!(s(m, "source.schema_registry.event_record_format"), "JSON");
    assert_eq!(get(m, "source.schema_registry.validate").as_array().unwrap()[0].as_str(), Some("VALUE"));
    assert!(!stderr.contains("SchemaRegistryConfig"), "imported, nothing to say: {stderr}");
    assert!(stderr.contains("set these environment variables before running it: ORDER_INDEXER_ORDERS_BOOTSTRAP_SERVERS, ORDER_INDEXER_ORDERS_USERNAME, ORDER_INDEXER_ORDERS_PASSWORD"), "{stderr}");
    // Without them the config is refused, naming the variable.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msk.toml");
    std::fs::write(&path, &body).unwrap();
    let out = esmd().args(["validate", "-c"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("ORDER_INDEXER_ORDERS_BOOTSTRAP_SERVERS is not set"), "{}", text(&out.stderr));
}

#[test]
fn self_managed_kafka_with_scram_and_a_private_ca() {
    let (cfg, _, stderr) = imported(&["self-managed-kafka.json"], &[]);
    let m = &mappings(&cfg)[0];
    let servers: Vec<&str> = get(m, "source.bootstrap_servers").as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(servers, ["kafka-1.payments.internal:9096", "kafka-2.payments.internal:9096", "kafka-3.payments.internal:9096"]);
    assert_eq!((s(m, "source.topic"), s(m, "source.consumer_group_id")), ("payments.v1", "payments-consumer"));
    assert_eq!(s(m, "source.sasl.mechanism"), "SCRAM-SHA-256");
    assert_eq!(s(m, "source.tls.ca_file"), "certs/payments-consumer-payments-v1-ca.pem");
    missing(get(m, "source"), "cluster_arn");
    assert!(stderr.contains("VPC_SUBNET/VPC_SECURITY_GROUP (subnet:subnet-0a1b2c3d4e5f60718, security_group:sg-0f1e2d3c4b5a69788)"), "{stderr}");
    assert!(stderr.contains("secret:kafka/root-ca-Kd82Lm"), "{stderr}");
}

#[test]
fn amazon_mq_rabbitmq() {
    let (cfg, _, stderr) = imported(&["rabbitmq.json"], &[]);
    let m = &mappings(&cfg)[0];
    assert_eq!(s(m, "source.type"), "rabbitmq");
    assert_eq!(s(m, "source.uri"), "amqps://b-9bcfa592-423a-4942-879d-eb284b418fc8.mq.us-east-1.amazonaws.com:5671");
    assert_eq!((s(m, "source.queue"), s(m, "source.virtual_host")), ("emails", "/notifications"));
    assert_eq!((s(m, "source.username"), s(m, "source.password")), ("${SEND_EMAILS_EMAILS_USERNAME}", "${SEND_EMAILS_EMAILS_PASSWORD}"));
    assert_eq!(s(m, "source.broker_arn"), "arn:aws:mq:us-east-1:123456789012:broker:notifications:b-9bcfa592-423a-4942-879d-eb284b418fc8");
    assert_eq!((n(m, "batch_size"), n(m, "maximum_batching_window_in_seconds")), (100, 1));
    assert!(stderr.contains("not ActiveMQ"), "{stderr}");
}

#[test]
fn a_list_imports_every_supported_mapping() {
    let (cfg, _, stderr) = imported(&["list.json"], &[]);
    let names: Vec<&str> = mappings(&cfg).iter().map(|m| s(m, "name")).collect();
    assert_eq!(names, ["make-thumbnails-thumbnail-jobs", "audit-archiver-audit-log", "customer-sync-customers"]);
    let kinesis = &mappings(&cfg)[1];
    // Epoch seconds, as CLI v1 prints them.
    assert_eq!(s(kinesis, "starting_position_timestamp"), "2024-11-01T00:00:00Z");
    // The enhanced fan-out consumer's ARN becomes its stream's.
    assert_eq!(s(kinesis, "source.stream_arn"), "arn:aws:kinesis:us-east-1:123456789012:stream/audit-log");
    missing(kinesis, "destination_config");
    let dynamodb = &mappings(&cfg)[2];
    assert_eq!(get(dynamodb, "enabled").as_bool(), Some(false));
    assert_eq!(s(dynamodb, "destination_config.on_failure.destination"), "arn:aws:sns:us-east-1:123456789012:customer-sync-failures");
    assert!(stderr.contains("EventSourceMappings[1].EventSourceArn: the mapping reads through the enhanced fan-out consumer \"audit-esm\""), "{stderr}");
    assert!(stderr.contains("EventSourceMappings[3].EventSourceArn: Amazon DocumentDB change streams: esmd has no DocumentDB source: mapping not imported"), "{stderr}");
}

#[test]
fn a_sam_template_with_several_events() {
    let dir = tempfile::tempdir().unwrap();
    // Its ARNs are built from the stack's region and account: without them, every one is named.
    let (out, path) = import(dir.path(), &["sam.yaml"], &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for at in ["Events.Orders.Properties.Queue", "Events.Clicks.Properties.Stream", "Events.Clicks.Properties.DestinationConfig.OnFailure.Destination"] {
        assert!(err.contains(&format!("Resources.OrderProcessor.Properties.{at}: ")), "{at}:\n{err}");
    }
    assert!(err.contains("!Sub \"arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Env}-orders\" cannot be resolved"), "{err}");
    assert!(err.contains("pass --parameter AWS::Region=VALUE"), "{err}");
    assert!(!path.exists(), "nothing is written on error");

    let (cfg, _, stderr) = imported(&["sam.yaml"], &["--parameter", "AWS::Region=us-east-1", "--parameter", "AWS::AccountId=123456789012"]);
    let ms = mappings(&cfg);
    let names: Vec<&str> = ms.iter().map(|m| s(m, "name")).collect();
    assert_eq!(names, ["OrderProcessor-Orders", "OrderProcessor-Clicks", "OrderProcessor-OrderTable", "OrderProcessor-Payments", "Notifier-Emails"]);
    let sqs = &ms[0];
    assert_eq!(s(sqs, "source.queue_url"), "https://sqs.us-east-1.amazonaws.com/123456789012/prod-orders");
    // `!Ref BatchSize`: a Number parameter's default.
    assert_eq!((n(sqs, "batch_size"), n(sqs, "scaling_config.maximum_concurrency")), (25, 20));
    // SAM points mappings at the AutoPublishAlias (here from Globals).
    assert_eq!((s(sqs, "function.function_name"), s(sqs, "function.qualifier")), ("prod-order-processor", "live"));
    assert_eq!(s(&ms[1], "destination_config.on_failure.destination"), "arn:aws:sqs:us-east-1:123456789012:clicks-failures");
    assert_eq!(s(&ms[1], "source.stream_arn"), "arn:aws:kinesis:us-east-1:123456789012:stream/clickstream");
    assert_eq!(n(&ms[2], "tumbling_window_in_seconds"), 300);
    assert_eq!((s(&ms[3], "source.sasl.mechanism"), s(&ms[3], "source.consumer_group_id")), ("PLAIN", "prod-order-processor"));
    assert_eq!(get(&ms[3], "source.tls.enabled").as_bool(), Some(true));
    assert_eq!((s(&ms[4], "source.type"), s(&ms[4], "function.qualifier")), ("rabbitmq", "prod"));
    for said in ["Events.Api: the Api event is not an event source mapping", "Events.Clicks.Properties.MetricsConfig", "Events.OrderTable.Properties.KmsKeyArn", "Events.Emails.Properties.DynamicPolicyName"] {
        assert!(stderr.contains(said), "{said}:\n{stderr}");
    }
}

#[test]
fn a_cloudformation_yaml_template_with_short_form_intrinsics() {
    let dir = tempfile::tempdir().unwrap();
    let (out, path) = import(dir.path(), &["cloudformation.yaml"], &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("Resources.OrdersMapping.Properties.EventSourceArn: !GetAtt OrdersQueue.Arn cannot be resolved: it is an attribute of OrdersQueue (AWS::SQS::Queue), known only once CloudFormation creates it; pass the value with --set Resources.OrdersMapping.Properties.EventSourceArn=VALUE"),
        "{err}"
    );
    assert!(err.contains("Resources.ClicksMapping.Properties.DestinationConfig.OnFailure.Destination: !GetAtt ClicksFailures.Arn cannot be resolved"), "{err}");
    assert!(err.contains("Resources.ClicksMapping.Properties.FunctionName: !Sub"), "{err}");
    assert!(!path.exists());

    let (cfg, _, stderr) = imported(
        &["cloudformation.yaml"],
        &[
            "--parameter",
            "AWS::Region=eu-west-1",
            "--parameter",
            "AWS::AccountId=123456789012",
            "--set",
            "Resources.OrdersMapping.Properties.EventSourceArn=arn:aws:sqs:eu-west-1:123456789012:prod-orders",
            "--set",
            "Resources.ClicksMapping.Properties.DestinationConfig.OnFailure.Destination=arn:aws:sqs:eu-west-1:123456789012:prod-clicks-failures",
        ],
    );
    let orders = &mappings(&cfg)[0];
    assert_eq!(s(orders, "name"), "OrdersMapping");
    // `!Ref OrdersFunction` is the function's name, which the template gives.
    assert_eq!(s(orders, "function.function_name"), "prod-orders-handler");
    assert_eq!(n(orders, "batch_size"), 10);
    let clicks = &mappings(&cfg)[1];
    // `!FindInMap [StageSettings, !Ref Stage, ...]`.
    assert_eq!((n(clicks, "batch_size"), n(clicks, "parallelization_factor")), (1000, 4));
    assert_eq!(s(clicks, "source.stream_arn"), "arn:aws:kinesis:eu-west-1:123456789012:stream/prod-clicks");
    assert_eq!(s(clicks, "destination_config.on_failure.destination"), "arn:aws:sqs:eu-west-1:123456789012:prod-clicks-failures");
    assert!(stderr.contains("Resources.OrdersMapping.Properties.Tags: esmd mappings have no tags"), "{stderr}");
    assert!(stderr.contains("Resources.ClicksMapping.Properties.ProvisionedPollerConfig"), "{stderr}");
}

#[test]
fn a_cloudformation_json_template_with_long_form_intrinsics() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = import(dir.path(), &["cloudformation.json"], &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    // Shown as the input writes it.
    assert!(err.contains("Resources.CustomerSyncMapping.Properties.DestinationConfig.OnFailure.Destination: {\"Fn::ImportValue\":\"shared-failures-queue-arn\"} cannot be resolved: the value is exported by another stack"), "{err}");

    let (cfg, _, stderr) = imported(&["cloudformation.json"], &["--set", "Resources.CustomerSyncMapping.Properties.DestinationConfig.OnFailure.Destination=arn:aws:sqs:eu-west-1:123456789012:shared-failures"]);
    let sync = &mappings(&cfg)[0];
    // `{"Ref": "TableStreamArn"}`: the parameter's default.
    assert_eq!(s(sync, "source.stream_arn"), "arn:aws:dynamodb:eu-west-1:123456789012:table/customers/stream/2024-02-01T00:00:00.000");
    assert_eq!(s(sync, "destination_config.on_failure.destination"), "arn:aws:sqs:eu-west-1:123456789012:shared-failures");
    let ledger = &mappings(&cfg)[1];
    // A CommaDelimitedList parameter in CloudFormation's Endpoints.KafkaBootstrapServers.
    assert_eq!(get(ledger, "source.bootstrap_servers").as_array().unwrap().len(), 2);
    assert_eq!(s(ledger, "function.function_name"), "ledger-writer:live");
    assert_eq!(s(ledger, "starting_position_timestamp"), "2024-09-01T00:00:00Z");
    assert_eq!((s(ledger, "source.tls.cert_file"), s(ledger, "source.tls.key_file")), ("certs/LedgerMapping-client.pem", "certs/LedgerMapping-client-key.pem"));
    assert!(stderr.contains("LoggingConfig") && stderr.contains("Resources.LedgerMapping.Properties.Tags"), "{stderr}");
}

#[test]
fn several_inputs_stdin_and_stdout() {
    // Names stay unique across inputs.
    let (cfg, _, _) = imported(&["list.json", "sam.yaml", "sam.yaml"], &["--parameter", "AWS::Region=us-east-1", "--parameter", "AWS::AccountId=123456789012"]);
    let names: Vec<&str> = mappings(&cfg).iter().map(|m| s(m, "name")).collect();
    assert_eq!(names.len(), 13);
    assert_eq!((names[3], names[8]), ("OrderProcessor-Orders", "OrderProcessor-Orders-2"));
    let err = {
        let dir = tempfile::tempdir().unwrap();
        // Two inputs with the same UUID: esmd's validation refuses it, at the AWS key.
        let (out, _) = import(dir.path(), &["sqs.json", "sqs.json"], &[]);
        assert!(!out.status.success());
        text(&out.stderr)
    };
    assert!(err.contains(": UUID: esmd refuses the imported value: uuid = \"a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d\" is already used"), "{err}");

    let mut child = esmd().args(["import", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&std::fs::read(fixture("rabbitmq.json")).unwrap()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("1 mapping written to stdout"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stdout.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    assert!(validate(&path).contains("ok (1 mapping)"));
}

/// Writes `body` as an input and imports it; returns the import's stderr (it must fail).
fn refused(name: &str, body: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(name);
    std::fs::write(&input, body).unwrap();
    let out_path = dir.path().join("out.toml");
    let out = esmd().arg("import").arg(&input).arg("-o").arg(&out_path).args(extra).output().unwrap();
    assert!(!out.status.success(), "{name} was accepted: {}", text(&out.stderr));
    assert!(!out_path.exists(), "nothing is written on error");
    text(&out.stderr)
}

#[test]
fn bad_input_fails_with_the_key_path() {
    let sqs = std::fs::read_to_string(fixture("sqs.json")).unwrap();
    assert!(refused("a.json", "{\n  \"UUID\": \n}", &[]).contains("JSON syntax, line 3"));
    assert!(refused("a.json", "{\"Functions\": []}", &[]).contains("not an event source mapping"));
    // A value esmd's validation refuses is reported at the AWS key.
    let e = refused("a.json", &sqs.replace("\"BatchSize\": 50", "\"BatchSize\": 20000"), &[]);
    assert!(e.contains("a.json: BatchSize: esmd refuses the imported value: batch_size = 20000 is out of range (1–10000)"), "{e}");
    let e = refused("a.json", &sqs.replace("\"BatchSize\": 50", "\"BatchSize\": \"fifty\""), &[]);
    assert!(e.contains("a.json: BatchSize: expected a whole number, found \"fifty\""), "{e}");
    let e = refused("a.json", &sqs.replace("arn:aws:sqs:us-east-1:123456789012:order-events", "arn:aws:sns:us-east-1:123456789012:orders"), &[]);
    assert!(e.contains("a.json: EventSourceArn: \"arn:aws:sns:us-east-1:123456789012:orders\": sns is not an event source esmd knows"), "{e}");
    let msk = std::fs::read_to_string(fixture("msk.json")).unwrap();
    let e = refused("m.json", &msk.replace("\"orders\"\n", "\"orders\", \"refunds\"\n"), &[]);
    assert!(e.contains("m.json: Topics: Topics has 2 entries; a mapping reads exactly one"), "{e}");
    let e = refused("l.json", "{\"EventSourceMappings\": [{\"UUID\": \"0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9\", \"BatchSize\": 10}]}", &[]);
    assert!(e.contains("EventSourceMappings[0]: missing: a mapping needs EventSourceArn"), "{e}");
    assert!(e.contains("EventSourceMappings[0]: FunctionName is required"), "{e}");
    // Only DocumentDB: nothing left to write.
    let e = refused("d.json", "{\"EventSourceArn\": \"arn:aws:rds:us-east-1:123456789012:cluster:docs\", \"FunctionArn\": \"arn:aws:lambda:us-east-1:123456789012:function:f\"}", &[]);
    assert!(e.contains("nothing to import") && e.contains("DocumentDB"), "{e}");
    // A SAM function without FunctionName says how to give it.
    let e = refused("t.yaml", "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        Q:\n          Type: SQS\n          Properties:\n            Queue: arn:aws:sqs:us-east-1:123456789012:q\n", &[]);
    assert!(e.contains("t.yaml: Resources.Fn.Properties.FunctionName: Fn has no FunctionName") && e.contains("--set Resources.Fn.Properties.FunctionName=NAME"), "{e}");
}

#[test]
fn bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = esmd().args(["import"]).arg(fixture("sqs.json")).arg("-o").arg(dir.path().join("x.yaml")).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("name the output *.toml"), "{}", text(&out.stderr));
    let (out, _) = import(dir.path(), &["sqs.json"], &["--set", "Resources.M.Properties.BatchSize=5"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--set Resources.M.Properties.BatchSize: no input has a top-level key \"Resources\""), "{}", text(&out.stderr));
    let (out, _) = import(dir.path(), &["sam.yaml"], &["--parameter", "Evn=dev"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--parameter Evn: no template declares this parameter"), "{}", text(&out.stderr));
    let out = esmd().args(["import", "--set", "nope"]).arg(fixture("sqs.json")).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("expected PATH=VALUE"), "{}", text(&out.stderr));
    // A --set fixes a value in CLI output too.
    let (cfg, _, _) = imported(&["sqs.json"], &["--set", "BatchSize=5"]);
    assert_eq!(n(&mappings(&cfg)[0], "batch_size"), 5);
}

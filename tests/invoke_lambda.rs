//! The Lambda invoker against moto's Lambda (without Docker), and against a FunctionServer that
//! plays the Lambda Invoke API for the answers moto cannot give (throttles, service errors,
//! function errors in AWS's form).
//!
//! What moto can and cannot do here: with `{"lambda":{"use_docker":false}}` moto never runs
//! code. Invoke echoes the event, or returns the next result queued at
//! `/moto-api/static/lambda-simple/response`, always with status 200 and no
//! `X-Amz-Function-Error`, even for a function that does not exist. The only function error it
//! produces is for a response over ~6 MB (`Function.ResponseSizeTooLarge`, `Unhandled`), which
//! the tests use. ResourceNotFound comes from moto's default (Docker) mode, which looks the
//! function up before it would need Docker. It has no throttling and no service errors; those
//! come from the stub.

mod support;

use bytes::Bytes;
use esmd::invoke::lambda::{LambdaInvoker, LambdaInvokerOptions};
use esmd::invoke::{InvokeError, InvokeResponse, Invoker};
use serde_json::{json, Value};
use std::sync::{Arc, Once};
use std::time::Duration;
use support::function::{FunctionServer, Reply};
use support::moto::{sdk_config_for, MotoServer, ACCOUNT};

const STUB_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:stub";

fn options(function_name: &str) -> LambdaInvokerOptions {
    LambdaInvokerOptions {
        function_name: function_name.to_owned(),
        qualifier: None,
        region: None,
        endpoint_url: None,
        timeout: Duration::from_secs(10),
        max_concurrency: 4,
        account: None,
    }
}

async fn moto_invoker(moto: &MotoServer, function_name: &str) -> LambdaInvoker {
    LambdaInvoker::from_sdk_config(options(function_name), &moto.sdk_config()).await.unwrap()
}

/// moto with Lambda in no-Docker mode and one function.
async fn moto_with_function(name: &str) -> (MotoServer, String) {
    let moto = MotoServer::start().await;
    moto.lambda_without_docker().await;
    let arn = moto.create_function(name).await;
    (moto, arn)
}

async fn stub_invoker(stub: &FunctionServer, timeout: Duration, max_concurrency: usize) -> LambdaInvoker {
    let opts = LambdaInvokerOptions { timeout, max_concurrency, ..options(STUB_ARN) };
    LambdaInvoker::from_sdk_config(opts, &sdk_config_for(&stub.url())).await.unwrap()
}

fn event() -> Bytes {
    Bytes::from(json!({ "Records": [{ "eventID": "1", "kinesis": { "data": "aGVsbG8=" } }] }).to_string())
}

fn body_json(r: &InvokeResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// Dummy credentials for the SDK's default chain, and no profile files or instance metadata:
/// `LambdaInvoker::new` must find these and nothing real. Every test calls this before it
/// starts anything, so the environment is written before any thread reads it.
fn dummy_environment() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent/esmd-tests/config"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/esmd-tests/credentials"),
        ] {
            std::env::set_var(k, v);
        }
        std::env::remove_var("AWS_PROFILE");
        std::env::remove_var("AWS_SESSION_TOKEN");
    });
}

// ---- against moto ----

#[tokio::test]
async fn moto_invoke_returns_the_payload() {
    dummy_environment();
    let (moto, _) = moto_with_function("echo").await;
    let r = moto_invoker(&moto, "echo").await.invoke(event()).await.unwrap();
    assert_eq!(r.status_code, 200);
    assert_eq!(r.function_error, None);
    assert_eq!(r.executed_version, "$LATEST");
    assert_eq!(body_json(&r), serde_json::from_slice::<Value>(&event()).unwrap());
}

#[tokio::test]
async fn moto_canned_responses_are_returned_in_order() {
    dummy_environment();
    let (moto, _) = moto_with_function("canned").await;
    moto.queue_lambda_results(&[
        r#"{"batchItemFailures":[{"itemIdentifier":"49590338271490256608559692538361571095921575989136588898"}]}"#,
        r#"{"state":{"count":3},"batchItemFailures":[]}"#,
        "",
    ])
    .await;
    let inv = moto_invoker(&moto, "canned").await;
    let first = inv.invoke(event()).await.unwrap();
    assert_eq!(
        body_json(&first)["batchItemFailures"][0]["itemIdentifier"],
        "49590338271490256608559692538361571095921575989136588898"
    );
    let second = inv.invoke(event()).await.unwrap();
    assert_eq!(esmd::invoke::response::window_state(&second.body), Some(json!({ "count": 3 })));
    let third = inv.invoke(event()).await.unwrap();
    assert!(third.body.is_empty(), "{:?}", third.body);
    assert!([first, second, third].iter().all(|r| r.function_error.is_none() && r.status_code == 200));
    // The queue is used up: moto echoes again.
    assert_eq!(inv.invoke(Bytes::from(r#"{"again":true}"#)).await.unwrap().body, Bytes::from(r#"{"again":true}"#));
}

#[tokio::test]
async fn moto_oversized_response_is_a_function_error() {
    // The one function error moto can produce without Docker: a response over 6 MB.
    dummy_environment();
    let (moto, _) = moto_with_function("big").await;
    let huge = "x".repeat(6_000_000);
    moto.queue_lambda_results(&[&huge]).await;
    let r = moto_invoker(&moto, "big").await.invoke(event()).await.unwrap();
    assert_eq!(r.status_code, 200);
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body_json(&r)["errorType"], "Function.ResponseSizeTooLarge");
}

#[tokio::test]
async fn moto_unknown_function_is_rejected() {
    // In its default (Docker) mode moto looks the function up before it would start a
    // container; without Docker it answers for any name, so this test leaves the default.
    dummy_environment();
    let moto = MotoServer::start().await;
    match moto_invoker(&moto, "missing").await.invoke(event()).await {
        Err(InvokeError::Rejected(message)) => assert!(message.contains("ResourceNotFoundException"), "{message}"),
        other => panic!("expected rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn moto_function_arn_is_looked_up_or_given() {
    dummy_environment();
    let (moto, arn) = moto_with_function("named").await;
    assert_eq!(arn, format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:named"));
    // A plain name: the account comes from GetFunctionConfiguration.
    assert_eq!(moto_invoker(&moto, "named").await.function_arn(), arn);
    let qualified = LambdaInvoker::from_sdk_config(
        LambdaInvokerOptions { qualifier: Some("$LATEST".into()), ..options("named") },
        &moto.sdk_config(),
    )
    .await
    .unwrap();
    assert_eq!(qualified.function_arn(), format!("{arn}:$LATEST"));
    assert!(qualified.invoke(event()).await.is_ok());
    // An ARN is used as it is, and invokes.
    let by_arn = moto_invoker(&moto, &arn).await;
    assert_eq!(by_arn.function_arn(), arn);
    assert!(by_arn.invoke(event()).await.unwrap().function_error.is_none());
    // A function the lookup cannot find: the stand-in account, and no failure at start.
    assert_eq!(
        moto_invoker(&moto, "not-yet").await.function_arn(),
        "arn:aws:lambda:us-east-1:000000000000:function:not-yet"
    );
}

#[tokio::test]
async fn moto_new_uses_the_default_credential_chain_and_endpoint_override() {
    dummy_environment();
    let (moto, arn) = moto_with_function("chain").await;
    let inv = LambdaInvoker::new(LambdaInvokerOptions {
        endpoint_url: Some(moto.endpoint()),
        region: Some("us-east-1".into()),
        ..options("chain")
    })
    .await
    .unwrap();
    assert_eq!(inv.function_arn(), arn);
    assert_eq!(inv.invoke(Bytes::from("{}")).await.unwrap().body, Bytes::from("{}"));
}

#[tokio::test]
async fn refused_endpoint_is_unavailable() {
    dummy_environment();
    let endpoint = format!("http://127.0.0.1:{}", support::moto::free_port());
    let inv = LambdaInvoker::from_sdk_config(options("f"), &sdk_config_for(&endpoint)).await.unwrap();
    // The ARN lookup failed too, quietly.
    assert_eq!(inv.function_arn(), "arn:aws:lambda:us-east-1:000000000000:function:f");
    match inv.invoke(event()).await {
        Err(InvokeError::Unavailable(message)) => {
            assert!(message.contains("refused") || message.contains("dispatch"), "{message}")
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn contradicting_qualifiers_fail_at_start() {
    dummy_environment();
    let opts = LambdaInvokerOptions { qualifier: Some("v2".into()), ..options("f:v1") };
    let err = LambdaInvoker::from_sdk_config(opts, &sdk_config_for("http://127.0.0.1:9")).await.unwrap_err();
    assert!(err.to_string().contains("contradicts"), "{err}");
    let opts = LambdaInvokerOptions { qualifier: Some("v1".into()), ..options("f:v1") };
    let inv = LambdaInvoker::from_sdk_config(opts, &sdk_config_for("http://127.0.0.1:9")).await.unwrap();
    assert_eq!(inv.function_arn(), "arn:aws:lambda:us-east-1:000000000000:function:f:v1");
}

// ---- against a stub playing the Invoke API ----

/// An error as Lambda sends it: status, `x-amzn-ErrorType`, JSON body.
fn lambda_error(status: u16, code: &str) -> Reply {
    Reply::json(status, json!({ "Type": "User", "message": format!("stub {code}") })).header("x-amzn-ErrorType", code)
}

#[tokio::test]
async fn stub_function_error_in_aws_form() {
    dummy_environment();
    let stub = FunctionServer::replies([Reply::ok(json!({ "errorType": "ValueError", "errorMessage": "bad record" }))
        .header("X-Amz-Function-Error", "Unhandled")
        .header("X-Amz-Executed-Version", "3")])
    .await;
    let opts = LambdaInvokerOptions { qualifier: Some("live".into()), ..options(STUB_ARN) };
    let inv = LambdaInvoker::from_sdk_config(opts, &sdk_config_for(&stub.url())).await.unwrap();
    assert_eq!(inv.function_arn(), format!("{STUB_ARN}:live"));
    let r = inv.invoke(event()).await.unwrap();
    assert_eq!(r.status_code, 200);
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(r.executed_version, "3");
    assert_eq!(body_json(&r)["errorMessage"], "bad record");

    let req = &stub.recorded()[0];
    assert_eq!(req.method, "POST");
    assert!(req.path.starts_with("/2015-03-31/functions/"), "{}", req.path);
    assert!(req.path.contains("Qualifier=live"), "{}", req.path);
    assert_eq!(req.header("x-amz-invocation-type"), Some("RequestResponse"));
    assert!(req.header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256")));
    assert_eq!(req.body, event());
}

#[tokio::test]
async fn stub_emulator_function_errors_without_the_header() {
    dummy_environment();
    let error_object = json!({ "errorType": "Error", "errorMessage": "asked to fail" });
    let stub = FunctionServer::replies([
        // The runtime interface emulator: 200, error object, no header.
        Reply::ok(error_object.clone()),
        // cargo lambda watch: 500, error object, no error code.
        Reply::json(500, error_object.clone()),
        // A success that merely mentions the words is still a success.
        Reply::ok(json!({ "batchItemFailures": [], "note": "errorType errorMessage" })),
    ])
    .await;
    let inv = stub_invoker(&stub, Duration::from_secs(5), 1).await;
    let r = inv.invoke(event()).await.unwrap();
    assert_eq!((r.status_code, r.function_error.as_deref()), (200, Some("Unhandled")));
    let r = inv.invoke(event()).await.unwrap();
    assert_eq!((r.status_code, r.function_error.as_deref()), (500, Some("Unhandled")));
    assert_eq!(body_json(&r), error_object);
    let r = inv.invoke(event()).await.unwrap();
    assert_eq!(r.function_error, None);
}

#[tokio::test]
async fn stub_throttle_with_retry_after() {
    dummy_environment();
    let stub = FunctionServer::replies([
        lambda_error(429, "TooManyRequestsException").header("Retry-After", "3"),
        lambda_error(429, "TooManyRequestsException"),
    ])
    .await;
    let inv = stub_invoker(&stub, Duration::from_secs(5), 1).await;
    match inv.invoke(event()).await {
        Err(InvokeError::Throttled { retry_after }) => assert_eq!(retry_after, Some(Duration::from_secs(3))),
        other => panic!("expected a throttle, got {other:?}"),
    }
    match inv.invoke(event()).await {
        Err(InvokeError::Throttled { retry_after }) => assert_eq!(retry_after, None),
        other => panic!("expected a throttle, got {other:?}"),
    }
    assert_eq!(stub.request_count(), 2, "the SDK must not retry on its own");
}

#[tokio::test]
async fn stub_errors_are_classified() {
    dummy_environment();
    let cases: Vec<(Reply, &str)> = vec![
        (lambda_error(500, "ServiceException"), "unavailable"),
        (lambda_error(502, "EC2UnexpectedException"), "unavailable"),
        (lambda_error(502, "ResourceNotReadyException"), "unavailable"),
        (lambda_error(409, "ResourceConflictException"), "unavailable"),
        (Reply::status(503, "<html>gateway</html>"), "unavailable"),
        (lambda_error(413, "RequestTooLargeException"), "rejected"),
        (lambda_error(404, "ResourceNotFoundException"), "rejected"),
        (lambda_error(403, "AccessDeniedException"), "rejected"),
        (lambda_error(400, "InvalidRequestContentException"), "rejected"),
        (lambda_error(400, "InvalidParameterValueException"), "rejected"),
        (lambda_error(429, "SomeFutureThrottle"), "throttled"),
    ];
    let expected: Vec<(String, &str)> = cases.iter().map(|(r, k)| (format!("{r:?}"), *k)).collect();
    let stub = FunctionServer::replies(cases.into_iter().map(|(r, _)| r)).await;
    let inv = stub_invoker(&stub, Duration::from_secs(5), 1).await;
    for (reply, kind) in expected {
        let got = match inv.invoke(event()).await {
            Err(InvokeError::Unavailable(_)) => "unavailable",
            Err(InvokeError::Rejected(_)) => "rejected",
            Err(InvokeError::Throttled { .. }) => "throttled",
            Ok(r) => panic!("{reply}: expected {kind}, got a response {r:?}"),
        };
        assert_eq!(got, kind, "{reply}");
    }
}

#[tokio::test]
async fn stub_timeout_is_a_function_error() {
    dummy_environment();
    let stub = FunctionServer::replies([Reply::delay(Duration::from_secs(3), Reply::ok(json!(null)))]).await;
    let inv = stub_invoker(&stub, Duration::from_millis(400), 1).await;
    let started = std::time::Instant::now();
    let r = inv.invoke(event()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body_json(&r)["errorType"], "Sandbox.Timedout");
}

#[tokio::test]
async fn stub_concurrency_limit_is_respected() {
    dummy_environment();
    let stub = FunctionServer::start(|_| Reply::delay(Duration::from_millis(150), Reply::ok(json!({})))).await;
    let inv = Arc::new(stub_invoker(&stub, Duration::from_secs(10), 2).await);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let inv = inv.clone();
            tokio::spawn(async move { inv.invoke(event()).await })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().unwrap().function_error.is_none());
    }
    assert_eq!(stub.request_count(), 8);
    assert_eq!(stub.max_in_flight(), 2);
}

#[tokio::test]
async fn oversized_payload_is_rejected_without_a_request() {
    dummy_environment();
    let stub = FunctionServer::ok().await;
    let inv = stub_invoker(&stub, Duration::from_secs(5), 1).await;
    let big = Bytes::from(vec![b' '; inv.max_payload_bytes() + 1]);
    assert!(matches!(inv.invoke(big).await, Err(InvokeError::Rejected(_))));
    assert_eq!(stub.request_count(), 0);
}

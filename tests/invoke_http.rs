//! The HTTP invoker against a real HTTP server: how each kind of answer is classified.

mod support;

use bytes::Bytes;
use esmd::invoke::http::{HttpInvoker, HttpInvokerOptions};
use esmd::invoke::{InvokeError, Invoker};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::function::{FunctionServer, Reply};

fn invoker(url: &str, timeout: Duration, max_concurrency: usize) -> HttpInvoker {
    HttpInvoker::new(HttpInvokerOptions {
        url: url.to_owned(),
        timeout,
        max_concurrency,
        headers: vec![],
        function_arn: None,
    })
    .unwrap()
}

fn event() -> Bytes {
    Bytes::from(json!({ "Records": [{ "messageId": "m1", "body": "hello" }] }).to_string())
}

fn body_json(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn success_returns_the_body_and_sends_the_event() {
    let f = FunctionServer::start(|_| Reply::batch_item_failures(["m1"])).await;
    let inv = HttpInvoker::new(HttpInvokerOptions {
        url: format!("{}invoke?x=1", f.url()),
        timeout: Duration::from_secs(5),
        max_concurrency: 2,
        headers: vec![("Authorization".into(), "Bearer t0ken".into()), ("x-extra".into(), "1".into())],
        function_arn: Some("arn:aws:lambda:eu-west-1:111122223333:function:mine".into()),
    })
    .unwrap();
    let r = inv.invoke(event()).await.unwrap();
    assert_eq!(r.status_code, 200);
    assert_eq!(r.function_error, None);
    assert_eq!(r.executed_version, "$LATEST");
    assert_eq!(body_json(&r.body), json!({ "batchItemFailures": [{ "itemIdentifier": "m1" }] }));
    assert_eq!(inv.function_arn(), "arn:aws:lambda:eu-west-1:111122223333:function:mine");

    let req = &f.recorded()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/invoke?x=1");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(req.header("x-extra"), Some("1"));
    assert_eq!(req.body, event());
}

#[tokio::test]
async fn empty_2xx_body_is_a_success_with_an_empty_body() {
    let f = FunctionServer::replies([Reply::status(204, "")]).await;
    let r = invoker(&f.url(), Duration::from_secs(5), 1).invoke(event()).await.unwrap();
    assert_eq!(r.status_code, 204);
    assert_eq!(r.function_error, None);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn default_function_arn_is_a_stand_in_that_does_not_depend_on_the_url() {
    let inv = invoker("http://fns.internal:8080/orders", Duration::from_secs(1), 1);
    assert_eq!(inv.function_arn(), "arn:aws:lambda:us-east-1:000000000000:function:function");
}

#[tokio::test]
async fn amz_headers_on_2xx_are_honoured() {
    // The Lambda runtime interface emulator and Lambda-compatible gateways answer 200 and mark
    // a failure with X-Amz-Function-Error.
    let f = FunctionServer::replies([Reply::ok(json!({ "errorMessage": "boom" }))
        .header("X-Amz-Function-Error", "Unhandled")
        .header("X-Amz-Executed-Version", "7")])
    .await;
    let r = invoker(&f.url(), Duration::from_secs(5), 1).invoke(event()).await.unwrap();
    assert_eq!(r.status_code, 200);
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(r.executed_version, "7");
}

#[tokio::test]
async fn lambda_error_object_on_2xx_is_a_function_error() {
    // What the runtime interface emulator answers for a failed invocation and for a timeout:
    // 200, no X-Amz-Function-Error (aws-lambda-runtime-interface-emulator#20).
    let f = FunctionServer::replies([
        Reply::ok(json!({ "errorType": "Error", "errorMessage": "failure", "trace": [] })),
        Reply::status(200, "Task timed out after 1.00 seconds"),
        Reply::ok(json!({ "batchItemFailures": [], "errorType": "not", "errorMessage": "an error" })),
    ])
    .await;
    let inv = invoker(&f.url(), Duration::from_secs(5), 1);
    for expected in [Some("Unhandled"), Some("Unhandled"), None] {
        let r = inv.invoke(event()).await.unwrap();
        assert_eq!((r.status_code, r.function_error.as_deref()), (200, expected), "{:?}", r.body);
    }
}

#[tokio::test]
async fn status_429_is_a_throttle_with_retry_after_seconds() {
    let f = FunctionServer::replies([Reply::throttle(Duration::from_secs(7)), Reply::throttle(None)]).await;
    let inv = invoker(&f.url(), Duration::from_secs(5), 1);
    match inv.invoke(event()).await {
        Err(InvokeError::Throttled { retry_after }) => assert_eq!(retry_after, Some(Duration::from_secs(7))),
        other => panic!("expected a throttle, got {other:?}"),
    }
    match inv.invoke(event()).await {
        Err(InvokeError::Throttled { retry_after }) => assert_eq!(retry_after, None),
        other => panic!("expected a throttle, got {other:?}"),
    }
}

#[tokio::test]
async fn status_503_is_a_throttle_with_retry_after_as_http_date() {
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    let f = FunctionServer::replies([Reply::status(503, "busy").header("retry-after", &at)]).await;
    match invoker(&f.url(), Duration::from_secs(5), 1).invoke(event()).await {
        Err(InvokeError::Throttled { retry_after: Some(d) }) => {
            // HTTP dates have one-second resolution.
            assert!(d > Duration::from_secs(110) && d <= Duration::from_secs(120), "{d:?}")
        }
        other => panic!("expected a throttle with a delay, got {other:?}"),
    }
}

#[tokio::test]
async fn status_500_is_a_function_error_with_the_real_status() {
    let f = FunctionServer::replies([Reply::error("handler failed"), Reply::status(404, "no route")]).await;
    let inv = invoker(&f.url(), Duration::from_secs(5), 1);
    let r = inv.invoke(event()).await.unwrap();
    assert_eq!(r.status_code, 500);
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body_json(&r.body)["errorMessage"], "handler failed");
    let r = inv.invoke(event()).await.unwrap();
    assert_eq!(r.status_code, 404);
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(r.body, Bytes::from("no route"));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let f = FunctionServer::replies([Reply::status(307, "").header("location", "http://127.0.0.1:1/")]).await;
    let r = invoker(&f.url(), Duration::from_secs(5), 1).invoke(event()).await.unwrap();
    assert_eq!((r.status_code, r.function_error.as_deref()), (307, Some("Unhandled")));
    assert_eq!(f.request_count(), 1);
}

#[tokio::test]
async fn status_413_is_rejected() {
    let f = FunctionServer::replies([Reply::status(413, "too big")]).await;
    match invoker(&f.url(), Duration::from_secs(5), 1).invoke(event()).await {
        Err(InvokeError::Rejected(_)) => {}
        other => panic!("expected rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn payload_over_the_limit_is_rejected_without_a_request() {
    let f = FunctionServer::ok().await;
    let inv = invoker(&f.url(), Duration::from_secs(5), 1);
    let big = Bytes::from(vec![b' '; inv.max_payload_bytes() + 1]);
    assert!(matches!(inv.invoke(big).await, Err(InvokeError::Rejected(_))));
    assert_eq!(f.request_count(), 0);
}

#[tokio::test]
async fn timeout_is_a_function_error_not_unavailable() {
    let f = FunctionServer::replies([Reply::delay(Duration::from_secs(3), Reply::empty())]).await;
    let started = std::time::Instant::now();
    let r = invoker(&f.url(), Duration::from_millis(300), 1).invoke(event()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(r.status_code, 200);
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    let body = body_json(&r.body);
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    assert_eq!(body["errorMessage"], "Task timed out after 0.30 seconds");
    assert_eq!(f.request_count(), 1, "the function got the event");
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let port = support::moto::free_port();
    match invoker(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(5), 1).invoke(event()).await {
        Err(InvokeError::Unavailable(message)) => {
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
            assert!(message.to_lowercase().contains("refused"), "{message}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_host_is_unavailable() {
    // `.invalid` never resolves (RFC 6761).
    match invoker("http://esmd-test.invalid/", Duration::from_secs(5), 1).invoke(event()).await {
        Err(InvokeError::Unavailable(_)) => {}
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn connection_lost_mid_answer_is_a_function_error() {
    let f = FunctionServer::replies([Reply::abort()]).await;
    let r = invoker(&f.url(), Duration::from_secs(5), 1).invoke(event()).await.unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body_json(&r.body)["errorType"], "esmd.ConnectionLost");
}

#[tokio::test]
async fn oversized_response_is_a_function_error() {
    let huge = "x".repeat(6 * 1024 * 1024 + 1);
    let f = FunctionServer::replies([Reply::status(200, huge)]).await;
    let r = invoker(&f.url(), Duration::from_secs(10), 1).invoke(event()).await.unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body_json(&r.body)["errorType"], "Function.ResponseSizeTooLarge");
}

#[tokio::test]
async fn concurrency_limit_is_respected() {
    let f = Arc::new(FunctionServer::start(|_| Reply::delay(Duration::from_millis(150), Reply::empty())).await);
    let inv = Arc::new(invoker(&f.url(), Duration::from_secs(10), 3));
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let inv = inv.clone();
            tokio::spawn(async move { inv.invoke(event()).await })
        })
        .collect();
    for call in calls {
        let r = call.await.unwrap().unwrap();
        assert_eq!(r.function_error, None);
    }
    assert_eq!(f.request_count(), 12);
    assert_eq!(f.max_in_flight(), 3, "the server saw more (or fewer) requests at once than allowed");
}

#[tokio::test]
async fn connections_are_reused() {
    let f = FunctionServer::ok().await;
    let inv = invoker(&f.url(), Duration::from_secs(5), 4);
    for _ in 0..5 {
        inv.invoke(event()).await.unwrap();
    }
    let peers: HashSet<_> = f.recorded().iter().map(|r| r.peer).collect();
    assert_eq!(peers.len(), 1, "sequential invokes opened several connections: {peers:?}");
}

#[tokio::test]
async fn function_server_scripting() {
    // The harness itself: queue first, then the handler; requests recorded in order.
    let f = FunctionServer::start(|event| Reply::ok(json!({ "seen": event["n"] }))).await;
    f.enqueue(Reply::status(500, "first"));
    let inv = invoker(&f.url(), Duration::from_secs(5), 1);
    let first = inv.invoke(Bytes::from(r#"{"n":1}"#)).await.unwrap();
    assert_eq!(first.status_code, 500);
    let second = inv.invoke(Bytes::from(r#"{"n":2}"#)).await.unwrap();
    assert_eq!(body_json(&second.body), json!({ "seen": 2 }));
    f.set_handler(|_| Reply::empty());
    assert!(inv.invoke(Bytes::from(r#"{"n":3}"#)).await.unwrap().body.is_empty());
    assert_eq!(
        f.wait_for_requests(3, Duration::from_secs(1)).await,
        vec![json!({"n":1}), json!({"n":2}), json!({"n":3})]
    );
}

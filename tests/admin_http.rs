//! The admin endpoint over real HTTP: /healthz, /readyz, /status, /metrics.

use esmd::admin::{self, AdminState};
use esmd::metrics::{install_recorder, MappingMetrics};
use esmd::status::{ShardState, StatusRegistry};
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn every_endpoint() {
    let prometheus = install_recorder().unwrap();
    let registry = StatusRegistry::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(admin::serve(listener, AdminState { registry: registry.clone(), prometheus }, async move {
            let _ = stopped.await;
        }));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let get = |path: &str| http.get(format!("{base}{path}")).send();

    // /healthz: up as long as the process is.
    let r = get("/healthz").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");

    // /readyz: 503 naming the mappings that have not started, then 200.
    let orders = registry.mapping("orders", "kinesis");
    let audit = registry.mapping("audit", "sqs");
    let r = get("/readyz").await.unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(body.contains("orders") && body.contains("audit"), "{body}");
    audit.set_started(true);
    let body = get("/readyz").await.unwrap().text().await.unwrap();
    assert!(body.contains("orders") && !body.contains("audit"), "{body}");
    orders.set_started(true);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    // /status: the registry snapshot as JSON.
    let shard = orders.shard("shardId-000000000001");
    shard.update(|s| {
        s.state = ShardState::Running;
        s.position = Some("495903382714902566085596925383615710".into());
        s.checkpoint = Some("495903382714902566085596925383615700".into());
        s.iterator_age_ms = 1500;
        s.in_flight_batches = 2;
        s.last_error = Some("function error".into());
    });
    let r = get("/status").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let text = r.text().await.unwrap();
    assert!(text.contains("\n  \"audit\""), "pretty-printed: {text}");
    let status: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["orders"]["source"], "kinesis");
    assert_eq!(status["orders"]["started"], true);
    let s = &status["orders"]["shards"]["shardId-000000000001"];
    assert_eq!(s["state"], "running");
    assert_eq!(s["position"], "495903382714902566085596925383615710");
    assert_eq!(s["checkpoint"], "495903382714902566085596925383615700");
    assert_eq!(s["iterator_age_ms"], 1500);
    assert_eq!(s["in_flight_batches"], 2);
    assert_eq!(s["last_error"], "function error");
    assert_eq!(status["audit"]["source"], "sqs");
    assert!(status["audit"]["shards"].as_object().unwrap().is_empty());

    // /metrics: Prometheus text including what was just recorded.
    let m = MappingMetrics::new("admin-http", "kinesis");
    m.invocation(Duration::from_millis(12));
    m.iterator_age("shardId-000000000001", 1500);
    let r = get("/metrics").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(text.contains("# TYPE esmd_invocations_total counter"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("esmd_invocations_total{") && l.contains(r#"mapping="admin-http""#))
        .unwrap_or_else(|| panic!("no invocations line for the mapping: {text}"));
    assert!(line.contains(r#"source="kinesis""#) && line.ends_with(" 1"), "{line}");
    // Histogram samples show up in the very next scrape, not only after background upkeep.
    assert!(
        text.lines().any(|l| l.starts_with("esmd_duration_seconds_bucket{") && l.contains(r#"mapping="admin-http""#)),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("esmd_iterator_age_milliseconds{") && l.ends_with(" 1500")), "{text}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap().unwrap();
}

//! deploy/grafana/esmd.json (Grafana dashboard), deploy/prometheus/alerts.yml (alerting rules)
//! and deploy/keda/esmd-kafka-scaledobject.yaml (KEDA scaling on lag) name esmd's metrics in
//! PromQL. A renamed metric or a label that is not there shows nothing and alerts on nothing,
//! silently. Checked here:
//!
//! - the dashboard is an importable Grafana model (uid, title, a `datasource` variable that
//!   every panel and query uses, a `mapping` variable every query filters on), the rules have
//!   alert, expr, for, a severity and a summary and description, the ScaledObject targets one
//!   of deploy/kubernetes/'s Deployments and mappings;
//! - `promtool check rules` accepts the rules, and the dashboard's and KEDA's queries as
//!   recording rules (their PromQL parses); `promtool test rules` makes every alert fire on
//!   series built for it and stay quiet on ones that should not fire;
//! - a real `esmd run` (memory streams and SQS queues on moto, leases in moto's DynamoDB, HTTP
//!   functions that succeed, fail, throttle and are not there, one on-failure destination
//!   that works and one that cannot) exports every `esmd_*` metric those queries name;
//! - a real Prometheus scraping that esmd (twice: two jobs, as a doubled scrape config would)
//!   returns data for every dashboard query, evaluates every rule without error and has the
//!   expected alerts pending; the KEDA query gives the true total lag, where a plain sum would
//!   count it twice.
//!
//! promtool and prometheus come from Debian's `prometheus` package (`scripts/prometheus-deps.sh`)
//! or `$ESMD_PROMTOOL` / `$ESMD_PROMETHEUS`; moto from `scripts/test-deps.sh`. A missing tool
//! fails the test: a skipped check looks like a passing one. Every server is on 127.0.0.1.

mod support;

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::function::{FunctionServer, Reply};
use support::moto::{esmd_command, free_port, MotoServer};
use support::wait::{until, until_every};

const DASHBOARD: &str = "deploy/grafana/esmd.json";
const ALERTS: &str = "deploy/prometheus/alerts.yml";
const KEDA: &str = "deploy/keda/esmd-kafka-scaledobject.yaml";

/// Metric names in the queries that are not esmd's own: Prometheus's scrape health.
const NOT_ESMD: &[&str] = &["up"];

/// Alerts the issue asks for; the file may have more.
const REQUIRED_ALERTS: &[&str] = &[
    "EsmdIteratorAgeHigh",
    "EsmdIteratorAgeRising",
    "EsmdRecordsDropped",
    "EsmdDestinationDeliveryFailing",
    "EsmdFunctionErrorRatioHigh",
    "EsmdNoHealthyInstance",
];

/// Metrics the dashboard must show (panels per mapping the issue lists).
const REQUIRED_ON_DASHBOARD: &[&str] = &[
    "esmd_iterator_age_milliseconds",
    "esmd_offset_lag",
    "esmd_invocations_total",
    "esmd_errors_total",
    "esmd_throttles_total",
    "esmd_duration_seconds_bucket",
    "esmd_dropped_events_total",
    "esmd_on_failure_destination_delivered_events_total",
    "esmd_destination_delivery_failures_total",
    "esmd_leases_held",
    "esmd_lease_takeovers_total",
    "esmd_lease_lost_total",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `$VAR` when set, else the binary on PATH (Debian puts both in /usr/bin); fails with a
/// pointer to the deps script when neither exists.
fn tool(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("{name} not found on PATH: run `bash scripts/prometheus-deps.sh` (Debian package prometheus), or set {var}"))
}

// ---------------------------------------------------------------------------------------------
// PromQL, minimally

/// The metric names a PromQL expression reads: identifiers outside label matchers `{…}`,
/// ranges `[…]` and strings that are not a function or aggregation (followed by `(`, `by` or
/// `without`), a
/// keyword, or a label list after `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];
    const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_to = |i: usize, close: char| -> usize {
        let mut j = i + 1;
        let mut quote: Option<char> = None;
        while j < chars.len() {
            match (quote, chars[j]) {
                (Some(q), '\\') if q != '`' => j += 1,
                (Some(q), c) if c == q => quote = None,
                (None, c @ ('"' | '\'' | '`')) => quote = Some(c),
                (None, c) if c == close => return j + 1,
                _ => {}
            }
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip_to(i, '}');
        } else if c == '[' {
            i = skip_to(i, ']');
        } else if matches!(c, '"' | '\'' | '`') {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            i = j + 1;
        } else if c.is_ascii_digit() || c == '$' {
            // Numbers, durations (`offset 5m`) and Grafana variables.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '_' | '$')) {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':')) {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            // `sum by (…) (…)`: an aggregation whose grouping comes first.
            let word: String = chars[next..].iter().take_while(|c| c.is_ascii_alphabetic()).collect();
            let before_paren = chars.get(next) == Some(&'(') || word == "by" || word == "without";
            if LABEL_LISTS.contains(&ident.as_str()) {
                if before_paren {
                    i = skip_to(next, ')');
                }
            } else if !before_paren && !KEYWORDS.contains(&ident.to_ascii_lowercase().as_str()) {
                names.insert(ident);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn the_promql_scanner_finds_metrics_and_nothing_else() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (mapping, le) (rate(esmd_duration_seconds_bucket{mapping=~"$mapping", x="a}b"}[$__rate_interval])))
           / on (mapping) group_left (source) esmd_offset_lag offset 5m and up == bool 1 unless max without (instance) (esmd_x:y [5m:1m])"#,
    );
    assert_eq!(names, BTreeSet::from(["esmd_duration_seconds_bucket".into(), "esmd_offset_lag".into(), "up".into(), "esmd_x:y".into()]));
}

/// A Grafana query as Prometheus receives it: the variables a dashboard query may use, with
/// values for a test that scrapes every second.
fn grafana_to_promql(expr: &str) -> String {
    let out = expr.replace("$__rate_interval", "10s").replace("$__range", "1m").replace("${mapping}", ".*").replace("$mapping", ".*");
    assert!(!out.contains('$'), "a Grafana variable this test does not know: {expr}");
    out
}

// ---------------------------------------------------------------------------------------------
// The files

struct Query {
    /// Where it is: "dashboard panel 3 (Iterator age) A", "alert EsmdRecordsDropped", ...
    at: String,
    /// PromQL as Prometheus gets it.
    promql: String,
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: not JSON: {e}"))
}

/// Every panel, rows' collapsed children included.
fn panels(d: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p.clone());
        out.extend(p["panels"].as_array().into_iter().flatten().cloned());
    }
    out
}

fn dashboard_queries() -> Vec<Query> {
    let mut out = Vec::new();
    for p in panels(&dashboard()).iter().filter(|p| p["type"] != "row") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default();
            out.push(Query { at: format!("{DASHBOARD}: panel {} ({}) {}", p["id"], p["title"], t["refId"]), promql: grafana_to_promql(expr) });
        }
    }
    out
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn rules() -> RuleFile {
    serde_norway::from_str(&read(ALERTS)).unwrap_or_else(|e| panic!("{ALERTS}: {e}"))
}

fn alert_queries() -> Vec<Query> {
    rules()
        .groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .map(|r| Query { at: format!("{ALERTS}: {}", r.alert.as_deref().or(r.record.as_deref()).unwrap_or("?")), promql: r.expr.clone() })
        .collect()
}

fn scaled_object() -> Value {
    serde_norway::from_str(&read(KEDA)).unwrap_or_else(|e| panic!("{KEDA}: {e}"))
}

fn keda_query() -> String {
    let so = scaled_object();
    so["spec"]["triggers"][0]["metadata"]["query"].as_str().unwrap_or_else(|| panic!("{KEDA}: no triggers[0].metadata.query")).to_string()
}

/// The mapping the KEDA query is about (`mapping="…"`).
fn keda_mapping(query: &str) -> String {
    let start = query.find(r#"mapping=""#).unwrap_or_else(|| panic!("{KEDA}: the query names no mapping=\"…\": {query}")) + 9;
    query[start..].split('"').next().unwrap_or_default().to_string()
}

fn all_queries() -> Vec<Query> {
    let mut q = dashboard_queries();
    q.extend(alert_queries());
    q.push(Query { at: format!("{KEDA}: query"), promql: keda_query() });
    q
}

/// The `esmd_*` metrics any query names; the others must be [`NOT_ESMD`].
fn esmd_metrics_used() -> BTreeMap<String, Vec<String>> {
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for q in all_queries() {
        for name in metric_names(&q.promql) {
            assert!(name.starts_with("esmd_") || NOT_ESMD.contains(&name.as_str()), "{}: {name} is neither an esmd metric nor one of {NOT_ESMD:?}: {}", q.at, q.promql);
            if name.starts_with("esmd_") {
                used.entry(name).or_default().push(q.at.clone());
            }
        }
    }
    used
}

// ---------------------------------------------------------------------------------------------
// Structure

#[test]
fn the_dashboard_is_an_importable_grafana_model() {
    let d = dashboard();
    for key in ["uid", "title"] {
        assert!(d[key].as_str().is_some_and(|s| !s.trim().is_empty()), "{DASHBOARD}: {key} missing");
    }
    assert!(d["uid"].as_str().unwrap().len() <= 40, "{DASHBOARD}: Grafana uids are at most 40 characters");
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 30), "{DASHBOARD}: schemaVersion");
    assert!(d["id"].is_null(), "{DASHBOARD}: an exported id would clash on import; leave it out");

    let vars = d["templating"]["list"].as_array().unwrap_or_else(|| panic!("{DASHBOARD}: no templating.list"));
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("{DASHBOARD}: no ${name} variable"));
    let ds = var("datasource");
    assert_eq!(ds["type"], "datasource", "{DASHBOARD}: $datasource");
    assert_eq!(ds["query"], "prometheus", "{DASHBOARD}: $datasource");
    let uses_ds_var = |v: &Value| v["uid"] == "${datasource}" || v["uid"] == "$datasource";
    let mapping = var("mapping");
    assert_eq!(mapping["type"], "query", "{DASHBOARD}: $mapping");
    assert!(uses_ds_var(&mapping["datasource"]), "{DASHBOARD}: $mapping queries {}", mapping["datasource"]);
    let definition = mapping["query"].as_str().or(mapping["query"]["query"].as_str()).unwrap_or_default();
    assert!(definition.starts_with("label_values(") && definition.trim_end().ends_with(", mapping)"), "{DASHBOARD}: $mapping from {definition:?}");
    assert!(mapping["includeAll"] == true && mapping["multi"] == true, "{DASHBOARD}: $mapping: several mappings at once");
    // "All" becomes allValue in =~ matchers: without it Grafana sends a list of every value.
    assert_eq!(mapping["allValue"], ".*", "{DASHBOARD}: $mapping allValue");

    let panels = panels(&d);
    let mut ids = BTreeSet::new();
    let mut used = BTreeSet::new();
    let mut cells: BTreeSet<(u64, u64)> = BTreeSet::new();
    for p in &panels {
        let at = format!("{DASHBOARD}: panel {} ({})", p["id"], p["title"]);
        assert!(p["id"].as_u64().is_some_and(|id| ids.insert(id)), "{at}: ids must be unique numbers");
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{at}: title");
        let g = &p["gridPos"];
        let (x, y, w, h) = (g["x"].as_u64(), g["y"].as_u64(), g["w"].as_u64(), g["h"].as_u64());
        let (Some(x), Some(y), Some(w), Some(h)) = (x, y, w, h) else { panic!("{at}: gridPos {g}") };
        assert!(x + w <= 24 && w > 0 && h > 0, "{at}: gridPos {g} outside the 24 columns");
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(cells.insert((cx, cy)), "{at}: overlaps another panel at column {cx}, row {cy}");
            }
        }
        if p["type"] == "row" {
            continue;
        }
        assert!(uses_ds_var(&p["datasource"]), "{at}: datasource {} (must be the $datasource variable)", p["datasource"]);
        let targets = p["targets"].as_array().filter(|t| !t.is_empty()).unwrap_or_else(|| panic!("{at}: no targets"));
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(t["refId"].as_str().is_some_and(|r| refs.insert(r.to_string())), "{at}: refIds must be unique");
            assert!(uses_ds_var(&t["datasource"]), "{at} {}: datasource {}", t["refId"], t["datasource"]);
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "{at} {}: no expr", t["refId"]);
            assert!(expr.contains(r#"mapping=~"$mapping""#), "{at} {}: every query filters on the $mapping variable: {expr}", t["refId"]);
            used.extend(metric_names(expr));
        }
    }
    for m in REQUIRED_ON_DASHBOARD {
        assert!(used.contains(*m), "{DASHBOARD}: no panel shows {m}");
    }
}

#[test]
fn every_alert_rule_is_complete() {
    let file = rules();
    assert!(!file.groups.is_empty(), "{ALERTS}: no groups");
    let mut names = BTreeSet::new();
    for g in &file.groups {
        assert!(!g.rules.is_empty(), "{ALERTS}: group {} has no rules", g.name);
        for r in &g.rules {
            let name = r.alert.as_deref().unwrap_or_else(|| panic!("{ALERTS}: group {}: only alerting rules here (record: {:?})", g.name, r.record));
            let at = format!("{ALERTS}: {name}");
            assert!(names.insert(name.to_string()), "{at}: defined twice");
            assert!(name.starts_with("Esmd") && name.chars().all(|c| c.is_ascii_alphanumeric()), "{at}: EsmdCamelCase names");
            assert!(!r.expr.trim().is_empty(), "{at}: expr");
            let for_ = r.for_.as_deref().unwrap_or_else(|| panic!("{at}: no `for:`: one bad scrape would page"));
            assert!(for_.len() >= 2 && for_[..for_.len() - 1].parse::<u32>().is_ok() && "smh".contains(&for_[for_.len() - 1..]), "{at}: for: {for_}");
            assert!(r.keep_firing_for.is_none(), "{at}: keep_firing_for needs Prometheus 2.42+; this test does not expect it");
            assert!(matches!(r.labels.get("severity").map(String::as_str), Some("info" | "warning" | "critical")), "{at}: labels.severity info|warning|critical, got {:?}", r.labels);
            for key in ["summary", "description"] {
                assert!(r.annotations.get(key).is_some_and(|s| !s.trim().is_empty()), "{at}: annotations.{key}");
            }
        }
    }
    for a in REQUIRED_ALERTS {
        assert!(names.contains(*a), "{ALERTS}: no alert {a}");
    }
}

#[test]
fn the_scaled_object_scales_a_deployment_of_deploy_kubernetes_on_total_lag() {
    let so = scaled_object();
    assert_eq!(so["apiVersion"], "keda.sh/v1alpha1", "{KEDA}");
    assert_eq!(so["kind"], "ScaledObject", "{KEDA}");
    let target = so["spec"]["scaleTargetRef"]["name"].as_str().unwrap_or_else(|| panic!("{KEDA}: scaleTargetRef.name"));
    let min = so["spec"]["minReplicaCount"].as_u64().unwrap_or(0);
    let max = so["spec"]["maxReplicaCount"].as_u64().unwrap_or_else(|| panic!("{KEDA}: maxReplicaCount: say how far it may scale"));
    assert!(min >= 1 && min <= max, "{KEDA}: replicas {min}..{max}: esmd does not scale from zero (nothing would read the source to see lag)");

    let trigger = &so["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "prometheus", "{KEDA}");
    let meta = &trigger["metadata"];
    assert!(meta["serverAddress"].as_str().is_some_and(|s| s.starts_with("http")), "{KEDA}: serverAddress");
    for key in ["threshold", "activationThreshold"] {
        // KEDA's metadata values are strings.
        let v = meta[key].as_str().unwrap_or_else(|| panic!("{KEDA}: {key} must be a quoted number"));
        assert!(v.parse::<f64>().is_ok_and(|n| n > 0.0), "{KEDA}: {key} = {v:?}");
    }
    assert_eq!(meta["ignoreNullValues"], "false", "{KEDA}: an empty answer must not read as a lag of 0");
    // One number, the total over replicas: KEDA divides it by the threshold.
    let query = keda_query();
    assert!(query.trim_start().starts_with("sum("), "{KEDA}: the query must be the total, sum(…): {query}");
    assert!(!query.contains("avg"), "{KEDA}: an average shrinks as replicas are added: {query}");
    assert!(metric_names(&query).contains("esmd_offset_lag"), "{KEDA}: scales on esmd_offset_lag: {query}");

    // The Deployment and the mapping are deploy/kubernetes/'s.
    let mapping = keda_mapping(&query);
    let mut found = false;
    for entry in std::fs::read_dir(root().join("deploy/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let doc = Value::deserialize(doc).unwrap();
            if doc["kind"] == "Deployment" && doc["metadata"]["name"] == target {
                found = true;
                assert!(text.contains(&format!("name = \"{mapping}\"")), "{KEDA}: mapping {mapping:?} is not in {}", path.display());
                let replicas = doc["spec"]["replicas"].as_u64().unwrap_or(1);
                assert!((min..=max).contains(&replicas), "{KEDA}: {target} starts with {replicas} replicas, outside {min}..{max}");
            }
        }
    }
    assert!(found, "{KEDA}: no Deployment {target} in deploy/kubernetes/");
}

// ---------------------------------------------------------------------------------------------
// promtool

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let bin = tool("ESMD_PROMTOOL", "promtool");
    let out = Command::new(&bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; run `bash scripts/prometheus-deps.sh`", bin.display()));
    (out.status.success(), format!("promtool {args:?}:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn promtool_accepts_the_rules_and_every_query() {
    let (ok, report) = promtool(&["check", "rules", ALERTS], &root());
    assert!(ok, "{report}");
    let n = alert_queries().len();
    assert!(report.contains(&format!("SUCCESS: {n} rules found")), "{report}");

    // The dashboard's and KEDA's queries as recording rules: promtool parses their PromQL.
    let mut queries = dashboard_queries();
    queries.push(Query { at: format!("{KEDA}: query"), promql: keda_query() });
    let rules: Vec<Value> = queries.iter().enumerate().map(|(i, q)| json!({ "record": format!("esmd_check:query_{i}"), "expr": q.promql })).collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("queries.yml"), serde_norway::to_string(&json!({ "groups": [{ "name": "queries", "rules": rules }] })).unwrap()).unwrap();
    let (ok, report) = promtool(&["check", "rules", "queries.yml"], dir.path());
    let listing: Vec<String> = queries.iter().enumerate().map(|(i, q)| format!("query_{i}: {}: {}", q.at, q.promql)).collect();
    assert!(ok, "{report}\n{}", listing.join("\n"));
}

/// Series for `promtool test rules` and the alerts they must (and must not) raise. Values are
/// per minute; labels as esmd and a scrape give them.
fn alert_unit_tests() -> Value {
    let alert = |labels: Value| json!({ "exp_labels": labels });
    json!([
        {
            "name": "iterator age",
            "interval": "1m",
            "input_series": [
                // Far behind, but steady.
                { "series": r#"esmd_iterator_age_milliseconds{mapping="orders",source="kinesis",instance="a:9464"}"#, "values": "400000x90" },
                { "series": r#"esmd_iterator_age_milliseconds{mapping="orders",source="kinesis",instance="b:9464"}"#, "values": "1000x90" },
                // Not moving at all: a minute older every minute.
                { "series": r#"esmd_iterator_age_milliseconds{mapping="stuck",source="kafka",instance="a:9464"}"#, "values": "0+60000x90" },
                { "series": r#"esmd_iterator_age_milliseconds{mapping="fine",source="kinesis",instance="a:9464"}"#, "values": "200x90" },
            ],
            "alert_rule_test": [
                { "eval_time": "5m", "alertname": "EsmdIteratorAgeHigh", "exp_alerts": [] },
                // stuck passed 300 s at 6 m: still pending.
                { "eval_time": "12m", "alertname": "EsmdIteratorAgeHigh", "exp_alerts": [alert(json!({ "severity": "warning", "mapping": "orders" }))] },
                { "eval_time": "12m", "alertname": "EsmdIteratorAgeRising", "exp_alerts": [] },
                { "eval_time": "25m", "alertname": "EsmdIteratorAgeRising", "exp_alerts": [alert(json!({ "severity": "warning", "mapping": "stuck" }))] },
                { "eval_time": "60m", "alertname": "EsmdIteratorAgeCritical", "exp_alerts": [] },
                { "eval_time": "70m", "alertname": "EsmdIteratorAgeCritical", "exp_alerts": [alert(json!({ "severity": "critical", "mapping": "stuck" }))] },
            ],
        },
        {
            "name": "backlog growing",
            "interval": "1m",
            "input_series": [
                // Two instances' shards of one mapping: the sum grows.
                { "series": r#"esmd_offset_lag{mapping="orders",source="kafka",instance="a:9464"}"#, "values": "20000+1000x40" },
                { "series": r#"esmd_offset_lag{mapping="orders",source="kafka",instance="b:9464"}"#, "values": "0+1000x40" },
                { "series": r#"esmd_offset_lag{mapping="steady",source="kafka",instance="a:9464"}"#, "values": "50000x40" },
                // Both replicas report the same queue.
                { "series": r#"esmd_queue_backlog{mapping="jobs",source="sqs",instance="a:9464"}"#, "values": "20000+500x40" },
                { "series": r#"esmd_queue_backlog{mapping="jobs",source="sqs",instance="b:9464"}"#, "values": "20000+500x40" },
                { "series": r#"esmd_queue_backlog{mapping="small",source="sqs",instance="a:9464"}"#, "values": "10+10x40" },
            ],
            "alert_rule_test": [
                { "eval_time": "25m", "alertname": "EsmdOffsetLagRising", "exp_alerts": [alert(json!({ "severity": "warning", "mapping": "orders" }))] },
                { "eval_time": "25m", "alertname": "EsmdQueueBacklogRising", "exp_alerts": [alert(json!({ "severity": "warning", "mapping": "jobs" }))] },
            ],
        },
        {
            "name": "failures",
            "interval": "1m",
            "input_series": [
                { "series": r#"esmd_dropped_events_total{mapping="payments",source="kinesis",instance="a:9464"}"#, "values": "0 0 0 5x30" },
                { "series": r#"esmd_destination_delivery_failures_total{mapping="refunds",source="kinesis",instance="a:9464"}"#, "values": "0+1x30" },
                { "series": r#"esmd_invocations_total{mapping="payments",source="kinesis",instance="a:9464"}"#, "values": "0+100x30" },
                { "series": r#"esmd_errors_total{mapping="payments",source="kinesis",instance="a:9464"}"#, "values": "0+10x30" },
                { "series": r#"esmd_throttles_total{mapping="payments",source="kinesis",instance="a:9464"}"#, "values": "0+50x30" },
                { "series": r#"esmd_invocations_total{mapping="orders",source="sqs",instance="a:9464"}"#, "values": "0+100x30" },
                { "series": r#"esmd_errors_total{mapping="orders",source="sqs",instance="a:9464"}"#, "values": "0+1x30" },
                { "series": r#"esmd_throttles_total{mapping="orders",source="sqs",instance="a:9464"}"#, "values": "0+1x30" },
                { "series": r#"esmd_invoke_unavailable_total{mapping="orders",source="sqs",instance="a:9464"}"#, "values": "0+3x30" },
                { "series": r#"esmd_polling_errors_total{mapping="jobs",source="sqs",instance="a:9464"}"#, "values": "0+1x30" },
            ],
            "alert_rule_test": [
                { "eval_time": "2m", "alertname": "EsmdRecordsDropped", "exp_alerts": [] },
                { "eval_time": "5m", "alertname": "EsmdRecordsDropped", "exp_alerts": [alert(json!({ "severity": "warning", "mapping": "payments" }))] },
                // Nothing dropped for the last 10 minutes.
                { "eval_time": "25m", "alertname": "EsmdRecordsDropped", "exp_alerts": [] },
                { "eval_time": "10m", "alertname": "EsmdDestinationDeliveryFailing", "exp_alerts": [alert(json!({ "severity": "critical", "mapping": "refunds" }))] },
                // payments 10 %, orders 1 %.
                { "eval_time": "15m", "alertname": "EsmdFunctionErrorRatioHigh", "exp_alerts": [alert(json!({ "severity": "warning", "mapping": "payments" }))] },
                { "eval_time": "20m", "alertname": "EsmdFunctionThrottled", "exp_alerts": [alert(json!({ "severity": "info", "mapping": "payments" }))] },
                { "eval_time": "15m", "alertname": "EsmdFunctionUnreachable", "exp_alerts": [alert(json!({ "severity": "warning", "mapping": "orders" }))] },
                { "eval_time": "15m", "alertname": "EsmdPollingErrors", "exp_alerts": [alert(json!({ "severity": "warning", "mapping": "jobs" }))] },
            ],
        },
        {
            "name": "every instance down",
            "interval": "1m",
            "input_series": [
                { "series": r#"up{job="esmd-kafka",instance="a:9464"}"#, "values": "0x20" },
                { "series": r#"up{job="esmd-kafka",instance="b:9464"}"#, "values": "0x20" },
                { "series": r#"up{job="node",instance="c:9100"}"#, "values": "1x20" },
            ],
            "alert_rule_test": [
                { "eval_time": "10m", "alertname": "EsmdNoHealthyInstance", "exp_alerts": [alert(json!({ "severity": "critical" }))] },
                { "eval_time": "10m", "alertname": "EsmdInstanceDown", "exp_alerts": [
                    alert(json!({ "severity": "warning", "job": "esmd-kafka", "instance": "a:9464" })),
                    alert(json!({ "severity": "warning", "job": "esmd-kafka", "instance": "b:9464" })),
                ] },
            ],
        },
        {
            "name": "no esmd scraped at all",
            "interval": "1m",
            "input_series": [{ "series": r#"up{job="node",instance="c:9100"}"#, "values": "1x20" }],
            "alert_rule_test": [
                { "eval_time": "10m", "alertname": "EsmdNoHealthyInstance", "exp_alerts": [alert(json!({ "severity": "critical" }))] },
            ],
        },
        {
            "name": "one instance up",
            "interval": "1m",
            "input_series": [
                { "series": r#"up{job="esmd-kafka",instance="a:9464"}"#, "values": "1x20" },
                { "series": r#"up{job="esmd-kafka",instance="b:9464"}"#, "values": "0x20" },
            ],
            "alert_rule_test": [
                { "eval_time": "10m", "alertname": "EsmdNoHealthyInstance", "exp_alerts": [] },
            ],
        },
        {
            "name": "leases",
            "interval": "1m",
            "input_series": [
                { "series": r#"esmd_leases_held{mapping="orders",instance="a:9464"}"#, "values": "0x30" },
                { "series": r#"esmd_leases_held{mapping="orders",instance="b:9464"}"#, "values": "0x30" },
                { "series": r#"esmd_leases_held{mapping="payments",instance="a:9464"}"#, "values": "0x30" },
                { "series": r#"esmd_leases_held{mapping="payments",instance="b:9464"}"#, "values": "4x30" },
                { "series": r#"esmd_lease_lost_total{mapping="orders",instance="a:9464"}"#, "values": "0+1x30" },
                { "series": r#"esmd_lease_lost_total{mapping="payments",instance="a:9464"}"#, "values": "0 1 2 2x30" },
            ],
            "alert_rule_test": [
                { "eval_time": "10m", "alertname": "EsmdNoLeaseHeld", "exp_alerts": [alert(json!({ "severity": "critical", "mapping": "orders" }))] },
                { "eval_time": "15m", "alertname": "EsmdLeaseChurn", "exp_alerts": [alert(json!({ "severity": "warning", "mapping": "orders" }))] },
            ],
        },
    ])
}

#[test]
fn promtool_unit_tests_make_every_alert_fire() {
    // A copy without annotations: promtool compares them too, and their wording is not what
    // this test is about (`check rules` parses their templates).
    let mut file: Value = serde_norway::from_str(&read(ALERTS)).unwrap();
    for group in file["groups"].as_array_mut().unwrap() {
        for rule in group["rules"].as_array_mut().unwrap() {
            rule.as_object_mut().unwrap().remove("annotations");
        }
    }
    let tests = alert_unit_tests();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), serde_norway::to_string(&file).unwrap()).unwrap();
    let test_file = json!({ "rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests });
    std::fs::write(dir.path().join("tests.yml"), serde_norway::to_string(&test_file).unwrap()).unwrap();
    let (ok, report) = promtool(&["test", "rules", "tests.yml"], dir.path());
    assert!(ok, "{report}");

    // Every alert of the file has a case where it fires.
    let fired: BTreeSet<String> = tests
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().unwrap().iter())
        .filter(|c| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
        .map(|c| c["alertname"].as_str().unwrap().to_string())
        .collect();
    for q in rules().groups.iter().flat_map(|g| g.rules.iter()) {
        let name = q.alert.clone().unwrap_or_default();
        assert!(fired.contains(&name), "{ALERTS}: {name} has no firing case in this test's promtool unit tests: add one");
    }
}

// ---------------------------------------------------------------------------------------------
// A real esmd and a real Prometheus

/// A child process killed when dropped, even when an assertion fails first.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn get_text(url: &str) -> Result<String, String> {
    let r = http().get(url).send().await.map_err(|e| format!("{url}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("{url}: {}", r.status()));
    }
    r.text().await.map_err(|e| format!("{url}: {e}"))
}

/// Sample names and `# TYPE` of one scrape.
struct Scrape {
    samples: BTreeSet<String>,
    types: BTreeMap<String, String>,
    text: String,
}

fn parse_scrape(text: String) -> Scrape {
    let mut samples = BTreeSet::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                types.insert(name.to_string(), kind.to_string());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            samples.insert(line.split(['{', ' ']).next().unwrap_or_default().to_string());
        }
    }
    Scrape { samples, types, text }
}

impl Scrape {
    /// A name a query can select: a sample in this scrape, and for `_bucket`, `_sum`, `_count`
    /// a sample of a histogram (or summary) family, not a counter that happens to end so.
    fn has(&self, name: &str) -> Result<(), String> {
        if !self.samples.contains(name) {
            return Err("not in the scrape".into());
        }
        if let Some(family) = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)) {
            match self.types.get(family).map(String::as_str) {
                Some("histogram") => {}
                Some("summary") if !name.ends_with("_bucket") => {}
                // A counter named …_count is its own family.
                _ if self.types.contains_key(name) => {}
                other => return Err(format!("family {family} is {other:?}, not a histogram")),
            }
        }
        Ok(())
    }

    /// The value of `name` for `mapping`.
    fn value(&self, name: &str, mapping: &str) -> Option<f64> {
        let label = format!(r#"mapping="{mapping}""#);
        self.text
            .lines()
            .find(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(&label))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

async fn prom_query(base: &str, promql: &str) -> Result<Vec<Value>, String> {
    let url = reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), &[("query", promql)]).map_err(|e| e.to_string())?;
    let r = http().get(url).send().await.map_err(|e| e.to_string())?;
    let body: Value = r.json().await.map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(format!("{promql}: {body}"));
    }
    Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
}

fn scalar(result: &[Value]) -> Option<f64> {
    match result {
        [one] => one["value"][1].as_str()?.parse().ok(),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn esmd_config(dir: &Path, admin_port: u16, moto: &str, jobs: &str, gone: &str, ok: &str, failing: &str, nowhere: &str) -> PathBuf {
    let good = dir.join("failures/payments.jsonl");
    // A regular file where the destination wants a directory: every delivery fails.
    std::fs::write(dir.join("blocker"), b"not a directory").unwrap();
    let bad = dir.join("blocker/refunds.jsonl");
    let config = format!(
        r#"
shutdown_timeout_seconds = 5
[admin]
listen = "127.0.0.1:{admin_port}"
[checkpoint]
type = "dynamodb"
table = "esmd-dashboard-leases"
region = "us-east-1"
endpoint_url = "{moto}"
create_table = true
[fleet]
instance_id = "esmd-a"
failover_time_seconds = 10

# Succeeds (after one throttle); non-JSON records filtered out.
[[mappings]]
name = "orders"
starting_position = "TRIM_HORIZON"
batch_size = 50
source = {{ type = "memory", stream_name = "orders", shards = 2, seed = {{ records = 2000, poison_every = 10 }} }}
function = {{ type = "http", url = "{ok}" }}
filter_criteria = {{ filters = [ {{ pattern = '{{"data":{{"n":[{{"exists":true}}]}}}}' }} ] }}

# Always fails: bisected down to single records, dropped to a file that works. Paced, so
# it still drops records while Prometheus watches (an increase needs two samples).
[[mappings]]
name = "payments"
starting_position = "TRIM_HORIZON"
batch_size = 10
maximum_retry_attempts = 0
bisect_batch_on_function_error = true
max_invocations_per_second = 20
source = {{ type = "memory", stream_name = "payments", shards = 1, seed = {{ records = 5000 }} }}
function = {{ type = "http", url = "{failing}" }}
destination_config = {{ on_failure = {{ destination = "file://{good}" }} }}

# Always fails, and its destination cannot be written: the shard is held, its lag stays.
[[mappings]]
name = "refunds"
starting_position = "TRIM_HORIZON"
batch_size = 10
maximum_retry_attempts = 0
source = {{ type = "memory", stream_name = "refunds", shards = 1, seed = {{ records = 1000 }} }}
function = {{ type = "http", url = "{failing}" }}
destination_config = {{ on_failure = {{ destination = "file://{bad}" }} }}

[[mappings]]
name = "jobs"
source = {{ type = "sqs", queue_url = "{jobs}", region = "us-east-1", endpoint_url = "{moto}" }}
function = {{ type = "http", url = "{ok}" }}

# The function is not there: every call is refused, and retried.
[[mappings]]
name = "unreachable"
starting_position = "TRIM_HORIZON"
source = {{ type = "memory", stream_name = "unreachable", shards = 1, seed = {{ records = 5 }} }}
function = {{ type = "http", url = "{nowhere}" }}

# Its queue is deleted once esmd runs: every receive fails.
[[mappings]]
name = "gone"
source = {{ type = "sqs", queue_url = "{gone}", region = "us-east-1", endpoint_url = "{moto}" }}
function = {{ type = "http", url = "{ok}" }}
"#,
        good = good.display(),
        bad = bad.display(),
    );
    let path = dir.join("esmd.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn prometheus_config(dir: &Path, esmd_port: u16) -> PathBuf {
    let target = format!("127.0.0.1:{esmd_port}");
    // Two jobs scraping the same esmd: what a doubled scrape config (annotations and a
    // ServiceMonitor) does. Series differ only in `job`.
    let config = json!({
        "global": { "scrape_interval": "1s", "evaluation_interval": "1s" },
        "rule_files": [root().join(ALERTS).display().to_string()],
        "scrape_configs": [
            { "job_name": "esmd", "static_configs": [{ "targets": [target] }] },
            { "job_name": "esmd-again", "static_configs": [{ "targets": [target] }] },
        ],
    });
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, serde_norway::to_string(&config).unwrap()).unwrap();
    path
}

async fn start_prometheus(dir: &Path, esmd_port: u16) -> (Killed, String) {
    let bin = tool("ESMD_PROMETHEUS", "prometheus");
    let config = prometheus_config(dir, esmd_port);
    let mut failures = Vec::new();
    // A free port found by binding and releasing it can be taken in between: try another.
    for attempt in 0..3 {
        let port = free_port();
        let log = dir.join(format!("prometheus-{attempt}.log"));
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join(format!("tsdb-{attempt}")).display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; run `bash scripts/prometheus-deps.sh`", bin.display()));
        let mut child = Killed(child);
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..300 {
            if child.0.try_wait().unwrap().is_some() {
                break;
            }
            if get_text(&format!("{base}/-/ready")).await.is_ok() {
                return (child, base);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        failures.push(std::fs::read_to_string(&log).unwrap_or_default());
    }
    panic!("prometheus did not start:\n{}", failures.join("\n---\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_esmd_and_prometheus_answer_every_query() {
    let used = esmd_metrics_used();
    // Before any server: a missing binary fails at once.
    tool("ESMD_PROMETHEUS", "prometheus");

    let moto = MotoServer::start().await;
    let jobs = moto.create_queue("dashboard-jobs", &[]).await;
    let bodies: Vec<String> = (0..30).map(|i| format!(r#"{{"job":{i}}}"#)).collect();
    moto.send_bodies(&jobs, &bodies, None).await;
    let gone = moto.create_queue("dashboard-gone", &[]).await;
    let ok = FunctionServer::ok().await;
    ok.enqueue(Reply::throttle(None));
    // Nothing listens there: every call is refused.
    let nowhere = format!("http://127.0.0.1:{}/", free_port());
    let failing = FunctionServer::start(|_| Reply::error("always fails")).await;

    let dir = tempfile::tempdir().unwrap();
    let admin_port = free_port();
    let config = esmd_config(dir.path(), admin_port, &moto.endpoint(), &jobs, &gone, &ok.url(), &failing.url(), &nowhere);
    let esmd_log = dir.path().join("esmd.log");
    let child = esmd_command(dir.path())
        .args(["run", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&esmd_log).unwrap())
        .spawn()
        .expect("esmd starts");
    let mut esmd = Killed(child);
    let metrics_url = format!("http://127.0.0.1:{admin_port}/metrics");
    let log_tail = || {
        let log = std::fs::read_to_string(&esmd_log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    // A loop, not `until`: the check needs the child mutably.
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = esmd.0.try_wait().unwrap() {
            panic!("esmd exited with {status}:\n{}", log_tail());
        }
        match get_text(&metrics_url).await {
            Ok(_) => break,
            Err(e) if started.elapsed() > Duration::from_secs(60) => panic!("esmd's /metrics after 60 s: {e}\n{}", log_tail()),
            Err(_) => tokio::time::sleep(support::wait::POLL).await,
        }
    }
    // Sources are open once /metrics answers: from now on every receive of "gone" fails.
    moto.sqs_client().delete_queue().queue_url(&gone).send().await.unwrap();

    // A lease lost: another owner takes one of "orders" (esmd takes it back after the
    // failover time, when the intruder never renews).
    let table = esmd::lease::LeaseTable::connect(
        "esmd-dashboard-leases",
        &esmd_aws::AwsClientConfig::new(None, Some(moto.endpoint())).with_sdk(Some(moto.sdk_config())),
    )
    .await;
    until_every("an intruder to take a lease of orders from esmd-a", Duration::from_secs(60), Duration::from_millis(100), || async {
        let leases = table.list("orders").await.map_err(|e| e.to_string())?;
        let Some(lease) = leases.iter().find(|l| l.owner.as_deref() == Some("esmd-a")) else { return Err(format!("esmd-a holds none yet: {leases:?}")) };
        match table.take(lease, "intruder").await.map_err(|e| e.to_string())? {
            Some(_) => Ok(()),
            None => Err("esmd-a renewed first".into()),
        }
    })
    .await;

    // Every esmd_* metric a query names, in one scrape.
    let scrape = until_every("every metric the queries name", Duration::from_secs(120), Duration::from_millis(500), || async {
        let scrape = parse_scrape(get_text(&metrics_url).await?);
        let missing: Vec<String> = used.keys().filter_map(|name| scrape.has(name).err().map(|why| format!("{name}: {why} (used by {})", used[name].join("; ")))).collect();
        if missing.is_empty() { Ok(scrape) } else { Err(missing.join("\n")) }
    })
    .await;
    let true_lag = scrape.value("esmd_offset_lag", "refunds").unwrap();
    assert!(true_lag > 0.0, "refunds' shard is held by its failing destination, so records stay unread");

    // Prometheus scraping that esmd.
    let prom_dir = tempfile::tempdir().unwrap();
    let (_prometheus, base) = start_prometheus(prom_dir.path(), admin_port).await;

    // Every dashboard query returns data.
    let queries = dashboard_queries();
    until_every("every dashboard query to return data", Duration::from_secs(60), Duration::from_millis(500), || async {
        let mut empty = Vec::new();
        for q in &queries {
            if prom_query(&base, &q.promql).await?.is_empty() {
                empty.push(format!("{}: {}", q.at, q.promql));
            }
        }
        if empty.is_empty() { Ok(()) } else { Err(format!("no data:\n{}", empty.join("\n"))) }
    })
    .await;

    // The $mapping variable lists every mapping.
    let d = dashboard();
    let variable = d["templating"]["list"].as_array().unwrap().iter().find(|v| v["name"] == "mapping").unwrap().clone();
    let definition = variable["query"].as_str().or(variable["query"]["query"].as_str()).unwrap().to_string();
    let selector = definition.trim_start_matches("label_values(").rsplit_once(',').unwrap().0.trim().to_string();
    let values: Value = http()
        .get(reqwest::Url::parse_with_params(&format!("{base}/api/v1/label/mapping/values"), &[("match[]", selector.as_str())]).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for m in ["orders", "payments", "refunds", "unreachable", "jobs", "gone"] {
        assert!(values["data"].as_array().unwrap().iter().any(|v| v == m), "$mapping ({definition}) does not list {m}: {values}");
    }

    // KEDA: the total lag once, although every series is scraped twice.
    let keda = keda_query();
    let keda_here = keda.replace(&format!(r#"mapping="{}""#, keda_mapping(&keda)), r#"mapping="refunds""#);
    let (keda_value, plain_sum) = until("the KEDA query to read refunds' lag", Duration::from_secs(30), || async {
        let now = parse_scrape(get_text(&metrics_url).await?).value("esmd_offset_lag", "refunds");
        let keda_value = scalar(&prom_query(&base, &keda_here).await?);
        let plain = scalar(&prom_query(&base, r#"sum(esmd_offset_lag{mapping="refunds"})"#).await?);
        match (now, keda_value, plain) {
            (Some(now), Some(k), Some(p)) if k == now && now > 0.0 => Ok((k, p)),
            other => Err(format!("(esmd, KEDA query, plain sum) = {other:?}")),
        }
    })
    .await;
    assert_eq!(plain_sum, 2.0 * keda_value, "two jobs scrape esmd: a plain sum counts the lag twice, the KEDA query once");

    // The rules evaluate without error on real series, and the failures above raise theirs.
    let expected: &[(&str, Option<&str>)] = &[
        ("EsmdRecordsDropped", Some("payments")),
        ("EsmdDestinationDeliveryFailing", Some("refunds")),
        ("EsmdFunctionErrorRatioHigh", Some("payments")),
        ("EsmdPollingErrors", Some("gone")),
        ("EsmdFunctionUnreachable", Some("unreachable")),
    ];
    until_every("the rules to evaluate and the expected alerts to be pending", Duration::from_secs(60), Duration::from_millis(500), || async {
        let body: Value = serde_json::from_str(&get_text(&format!("{base}/api/v1/rules")).await?).map_err(|e| e.to_string())?;
        let rules: Vec<&Value> = body["data"]["groups"].as_array().into_iter().flatten().flat_map(|g| g["rules"].as_array().into_iter().flatten()).collect();
        if rules.len() != alert_queries().len() {
            return Err(format!("{} rules loaded", rules.len()));
        }
        for r in &rules {
            if r["health"] != "ok" {
                return Err(format!("{} health {}: {}", r["name"], r["health"], r["lastError"]));
            }
        }
        let active: Vec<(String, String)> = rules
            .iter()
            .flat_map(|r| r["alerts"].as_array().into_iter().flatten())
            .map(|a| (a["labels"]["alertname"].as_str().unwrap_or_default().to_string(), a["labels"]["mapping"].as_str().unwrap_or_default().to_string()))
            .collect();
        assert!(!active.iter().any(|(name, _)| name == "EsmdNoHealthyInstance"), "EsmdNoHealthyInstance with esmd up: {active:?}");
        let missing: Vec<_> = expected
            .iter()
            .filter(|(name, mapping)| !active.iter().any(|(n, m)| n == name && mapping.is_none_or(|want| m == want)))
            .collect();
        if missing.is_empty() { Ok(()) } else { Err(format!("not active: {missing:?}; active: {active:?}")) }
    })
    .await;

    assert!(esmd.0.try_wait().unwrap().is_none(), "esmd exited during the test:\n{}", log_tail());
}

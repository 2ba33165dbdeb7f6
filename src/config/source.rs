//! `[mappings.source]`: where records come from, selected by `type`.
//!
//! The section belongs to its connector: [`crate::connectors`] finds the connector of the
//! `type`, which reads the rest of the table into its own config struct, checks it, and states
//! the source type's [`SourceProfile`] (family, AWS's defaults, which parameters apply).
//! Known types whose connector this build leaves out still have their profile, so the
//! parameter rules of their mappings are checked today.

use super::error::Issue;
use super::parse::{join, keyed, split_tagged, table_error};
use crate::connectors;
use esmd_api::connector::SourceSpec;
use esmd_api::profile::{Family, SourceProfile};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// A parsed source section: the connector's config struct behind its seam.
#[derive(Clone)]
pub struct SourceConfig(Arc<dyn SourceSpec>);

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connector's own Debug (secrets print as "***").
        self.0.fmt(f)
    }
}

impl PartialEq for SourceConfig {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_as(other.0.as_any())
    }
}

/// What a `[mappings.source]` table turned out to be.
pub(crate) enum ParsedSource {
    Available(SourceConfig),
    /// A known type whose connector is not in this build: the mapping's parameters can still
    /// be checked against its profile.
    Planned(SourceProfile),
    /// The table is wrong; when its type is known, the mapping's parameters can still be
    /// checked against that type's profile.
    Broken(Issue, Option<SourceProfile>),
}

impl SourceConfig {
    pub fn spec(&self) -> &dyn SourceSpec {
        &*self.0
    }

    /// The connector's config struct, when it is a `T` (the Kafka connector's `KafkaSourceConfig`).
    pub fn downcast<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }

    pub fn type_name(&self) -> &'static str {
        self.profile().type_name
    }

    pub fn family(&self) -> Family {
        self.profile().family
    }

    pub fn profile(&self) -> SourceProfile {
        self.0.profile()
    }

    /// Reads a source table found at absolute path `at`.
    pub(crate) fn parse(value: Value, at: &str) -> ParsedSource {
        let (type_name, rest) = match split_tagged(value, at, None) {
            Ok(split) => split,
            Err(issue) => return ParsedSource::Broken(issue, None),
        };
        let Some(connector) = connectors::source(&type_name) else {
            return match connectors::planned_profile(&type_name) {
                Some(profile) => ParsedSource::Planned(profile),
                None => ParsedSource::Broken(
                    keyed(
                        &join(at, "type"),
                        format!("unknown source type {type_name:?} (available: {}; planned: {})", connectors::available().join(", "), connectors::planned().join(", ")),
                    ),
                    None,
                ),
            };
        };
        let profile = connector.profile(&rest);
        match connector.parse(rest) {
            Ok(spec) => ParsedSource::Available(SourceConfig(spec)),
            Err(e) => ParsedSource::Broken(table_error(at, e), Some(profile)),
        }
    }

    /// Rules of the source's own keys. Paths are relative to the mapping.
    pub(crate) fn validate(&self, issues: &mut Vec<Issue>) {
        issues.extend(self.0.validate());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn parse(v: Value) -> Result<SourceConfig, Issue> {
        match SourceConfig::parse(v, "mappings[0].source") {
            ParsedSource::Available(s) => Ok(s),
            ParsedSource::Broken(issue, _) => Err(issue),
            ParsedSource::Planned(p) => panic!("planned {p:?}"),
        }
    }

    #[test]
    fn the_connector_reads_its_section() {
        let m = parse(json!({"type": "memory", "stream_name": "s"})).unwrap();
        assert_eq!(m.downcast::<esmd_memory::MemorySource>(), Some(&esmd_memory::MemorySource { stream_name: "s".into(), shards: 1, seed: None }));
        assert_eq!(m, parse(json!({"type": "memory", "stream_name": "s", "shards": 1})).unwrap());
        assert_ne!(m, parse(json!({"type": "memory", "stream_name": "t"})).unwrap());
        assert_ne!(m, parse(json!({"type": "memory_queue", "queue_name": "s"})).unwrap());
    }

    #[test]
    fn profiles_carry_aws_defaults() {
        let memory = parse(json!({"type": "memory", "stream_name": "s"})).unwrap().profile();
        assert_eq!((memory.family, memory.default_batch_size, memory.default_window), (Family::Stream, 100, Duration::ZERO));
        let queue = parse(json!({"type": "memory_queue", "queue_name": "q"})).unwrap().profile();
        assert_eq!((queue.family, queue.default_batch_size, queue.max_batch_size), (Family::Queue, 10, 10_000));
        assert!(queue.batch_over_10_needs_window);
        let fifo = parse(json!({"type": "memory_queue", "queue_name": "q.fifo", "fifo": true})).unwrap().profile();
        assert_eq!(fifo.max_batch_size, 10);
        assert!(connectors::planned().iter().all(|t| connectors::planned_profile(t).is_some()));
    }

    #[test]
    fn unknown_keys_and_types_name_the_path() {
        let e = parse(json!({"type": "memory", "stream_name": "s", "shard": 2})).unwrap_err();
        assert_eq!(e.path, "mappings[0].source.shard");
        assert!(e.message.starts_with("source.shard: unknown field `shard`"), "{}", e.message);
        let e = parse(json!({"type": "memory", "stream_name": "s", "seed": {"records": 1, "poison": 3}})).unwrap_err();
        assert_eq!(e.path, "mappings[0].source.seed.poison");
        let e = parse(json!({"type": "mqtt"})).unwrap_err();
        assert_eq!(e.path, "mappings[0].source.type");
        assert!(e.message.contains("unknown source type \"mqtt\"") && e.message.contains("memory_queue"), "{}", e.message);
        let e = parse(json!({"stream_name": "s"})).unwrap_err();
        assert!(e.message.contains("type"), "{}", e.message);
        #[cfg(not(feature = "kinesis"))]
        assert!(matches!(SourceConfig::parse(json!({"type": "kinesis", "stream_arn": "a"}), "s"), ParsedSource::Planned(p) if p.type_name == "kinesis"));
        #[cfg(feature = "sqs")]
        assert!(matches!(
            SourceConfig::parse(json!({"type": "sqs", "queue_url": "http://h/1/q.fifo", "x": 1}), "s"),
            ParsedSource::Broken(_, Some(p)) if p.max_batch_size == 10
        ));
        // A broken kafka table still tells its profile (AWS's 0.5 s window).
        #[cfg(feature = "kafka")]
        assert!(matches!(
            SourceConfig::parse(json!({"type": "kafka", "topic": "t"}), "s"),
            ParsedSource::Broken(_, Some(p)) if p.default_window == Duration::from_millis(500)
        ));
        // A broken table of a known type still tells its profile.
        assert!(matches!(
            SourceConfig::parse(json!({"type": "memory_queue", "fifo": true, "x": 1}), "s"),
            ParsedSource::Broken(_, Some(p)) if p.max_batch_size == 10
        ));
    }

    #[test]
    fn own_rules_come_from_the_connector() {
        let mut issues = Vec::new();
        parse(json!({"type": "memory", "stream_name": "s", "shards": 0})).unwrap().validate(&mut issues);
        assert_eq!(issues.into_iter().map(|i| i.message).collect::<Vec<_>>(), ["source.shards = 0 is out of range (1–1024)"]);
    }
}

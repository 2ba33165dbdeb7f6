//! The wiring: the one table that maps `type = "…"` to a connector crate. Everything else in
//! the service asks this table, so adding a source is its own crate plus one line here (and a
//! cargo feature when it has heavy dependencies).

use esmd_api::connector::Connector;
use esmd_api::profile::{self, SourceProfile};

/// Every connector in this build, in the order `esmd --help` and error messages list them.
static CONNECTORS: &[&dyn Connector] = &[
    &esmd_memory::MemoryStreamConnector,
    &esmd_memory::MemoryQueueConnector,
    #[cfg(feature = "kafka")]
    &esmd_kafka::KafkaConnector,
    #[cfg(feature = "rabbitmq")]
    &esmd_rabbitmq::RabbitMqConnector,
    #[cfg(feature = "sqs")]
    &esmd_sqs::SqsConnector,
    #[cfg(feature = "kinesis")]
    &esmd_kinesis::KinesisConnector,
    #[cfg(feature = "dynamodb-streams")]
    &esmd_dynamodb_streams::DynamoDbStreamsConnector,
];

/// Source types esmd knows but a build may leave out (cargo features): their mappings are still
/// checked against their profile, and refused with a pointer to the feature.
const OPTIONAL: &[&str] = &["kafka", "rabbitmq", "sqs", "kinesis", "dynamodb_streams"];

/// The connector of source type `type_name`, when this build has it.
pub fn source(type_name: &str) -> Option<&'static dyn Connector> {
    CONNECTORS.iter().copied().find(|c| c.type_name() == type_name)
}

/// The connector that delivers to destinations of `kind` (`kafka`, `rabbitmq`).
pub fn destination(kind: &str) -> Option<&'static dyn Connector> {
    CONNECTORS.iter().copied().find(|c| c.destination_kind() == Some(kind))
}

/// Connectors that also check (or build) on-failure destinations.
pub fn with_destinations() -> impl Iterator<Item = &'static dyn Connector> {
    CONNECTORS.iter().copied().filter(|c| c.destination_kind().is_some())
}

/// Log events of the connectors' client libraries that carry credentials (lapin's frame
/// dumps, [`esmd_rabbitmq::is_frame_dump`]): `esmd`'s logging drops them at every level.
pub fn logs_secrets(metadata: &tracing::Metadata<'_>) -> bool {
    #[cfg(feature = "rabbitmq")]
    if esmd_rabbitmq::is_frame_dump(metadata) {
        return true;
    }
    let _ = metadata;
    false
}

/// Source types this build can run.
pub fn available() -> Vec<&'static str> {
    CONNECTORS.iter().map(|c| c.type_name()).collect()
}

/// Source types with a profile but no connector in this build.
pub fn planned() -> Vec<&'static str> {
    OPTIONAL.iter().copied().filter(|t| source(t).is_none()).collect()
}

/// The profile of a known type whose connector is not in this build.
pub fn planned_profile(type_name: &str) -> Option<SourceProfile> {
    planned().contains(&type_name).then(|| profile::known(type_name)).flatten()
}

/// Source types `esmd demo` can fill in process, this build's first being the default.
pub fn embedded() -> Vec<&'static str> {
    let mut names: Vec<_> = CONNECTORS.iter().filter(|c| c.embedded_backlog(0, &[]).is_some()).map(|c| c.type_name()).collect();
    // The demo's default is the richest path: a broker's consumer group when there is one.
    names.sort_by_key(|n| *n == "memory");
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_optional_type_is_built_or_planned_and_has_a_profile() {
        for t in OPTIONAL {
            assert!(available().contains(t) != planned().contains(t), "{t}");
            assert!(profile::known(t).is_some(), "{t}");
        }
        assert_eq!(&available()[..2], ["memory", "memory_queue"]);
        assert!(planned_profile("memory").is_none());
    }

    #[test]
    fn a_connector_profile_matches_the_known_one() {
        for t in OPTIONAL {
            if let Some(c) = source(t) {
                assert_eq!(Some(c.profile(&serde_json::json!({}))), profile::known(t), "{t}");
            }
        }
    }

    #[test]
    fn the_demo_prefers_a_broker() {
        let names = embedded();
        assert_eq!(names.last(), Some(&"memory"));
        #[cfg(feature = "kafka")]
        assert_eq!(names.first(), Some(&"kafka"));
    }
}

//! `type = "kafka"` and `kafka://` destinations as the service's wiring sees them.

use crate::mock::EmbeddedKafka;
use crate::{partition_name, FailureProducer, KafkaDestination, KafkaOptions, KafkaSeeder, KafkaSource, KafkaSourceConfig};
use async_trait::async_trait;
use esmd_api::config::{ConfigIssue, TableError};
use esmd_api::connector::{
    parse_spec, BacklogPosition, BacklogRecord, Connector, DestinationContext, EmbeddedBacklog, LocalFuture, OpenContext, OpenedSource, SeedContext, SeedSetupError, SourceSpec,
};
use esmd_api::destination::{Destination, DestinationKind};
use esmd_api::profile::{self, SourceProfile};
use esmd_api::seed::Seeder;
use esmd_api::StartFrom;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub struct KafkaConnector;

fn kafka_source(source: Option<&dyn SourceSpec>) -> Option<&KafkaSourceConfig> {
    source?.as_any().downcast_ref::<KafkaSourceConfig>()
}

#[async_trait]
impl Connector for KafkaConnector {
    fn type_name(&self) -> &'static str {
        profile::KAFKA.type_name
    }

    fn profile(&self, _table: &Value) -> SourceProfile {
        profile::KAFKA
    }

    fn parse(&self, table: Value) -> Result<Arc<dyn SourceSpec>, TableError> {
        parse_spec::<KafkaSourceConfig>(table)
    }

    fn destination_kind(&self) -> Option<&'static str> {
        Some("kafka")
    }

    /// AWS blocks the loop a failed record would go round.
    fn check_destination(&self, destination: &DestinationKind, _connection: Option<&Value>, source: Option<&dyn SourceSpec>) -> Vec<ConfigIssue> {
        match (destination, kafka_source(source)) {
            (DestinationKind::Kafka { topic }, Some(k)) if *topic == k.topic => vec![ConfigIssue::new(
                "destination_config.on_failure.destination",
                format!("destination_config.on_failure.destination = \"{destination}\" is the source topic; failed records would come back forever"),
            )],
            _ => Vec::new(),
        }
    }

    /// A topic of the source's own cluster (validation made sure the source is Kafka).
    async fn destination(&self, ctx: DestinationContext<'_>) -> Result<Arc<dyn Destination>, String> {
        let DestinationKind::Kafka { topic } = ctx.destination else {
            return Err(format!("{} is not a kafka destination", ctx.destination));
        };
        let k = kafka_source(Some(ctx.source)).ok_or("kafka destinations need a kafka source")?;
        let producer = FailureProducer::for_source(k).map_err(|e| e.to_string())?;
        Ok(Arc::new(KafkaDestination::new(producer, topic.clone())))
    }

    /// librdkafka's mock cluster, read through the real consumer-group path. Records go
    /// round-robin over the partitions, so each partition's offsets are known without asking
    /// the cluster.
    fn embedded_backlog<'a>(&'a self, partitions: usize, records: &'a [BacklogRecord]) -> Option<LocalFuture<'a, Result<EmbeddedBacklog, String>>> {
        Some(Box::pin(embedded(partitions.max(1), records)))
    }
}

async fn embedded(partitions: usize, records: &[BacklogRecord]) -> Result<EmbeddedBacklog, String> {
    const TOPIC: &str = "esmd-demo";
    let kafka = EmbeddedKafka::start(1).map_err(|e| format!("embedded kafka: {e}"))?;
    kafka.create_topic(TOPIC, partitions as i32).map_err(|e| format!("embedded kafka: {e}"))?;
    let producer = kafka.producer().map_err(|e| format!("embedded kafka: {e}"))?;
    let mut next = vec![0i64; partitions];
    let mut positions = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let p = i % partitions;
        producer.enqueue(TOPIC, Some(p as i32), Some(r.key.as_bytes()), &r.data, r.timestamp_ms).await.map_err(|e| format!("seeding the backlog: {e}"))?;
        let shard = partition_name(TOPIC, p as i32);
        let offset = next[p];
        next[p] += 1;
        positions.push(BacklogPosition { label: format!("{shard}@{offset}"), shard, position: offset.to_string() });
    }
    let flushing = producer.clone();
    tokio::task::spawn_blocking(move || flushing.flush(Duration::from_secs(60)))
        .await
        .map_err(|e| format!("seeding the backlog: {e}"))?
        .map_err(|e| format!("seeding the backlog: {e}"))?;
    let config: KafkaSourceConfig = serde_json::from_value(serde_json::json!({
        "bootstrap_servers": kafka.bootstrap_servers().split(',').collect::<Vec<_>>(),
        "topic": TOPIC,
    }))
    .map_err(|e| format!("kafka source: {e}"))?;
    let source = KafkaSource::new(KafkaOptions { mapping: "demo".into(), config, starting_position: StartFrom::TrimHorizon, counters: esmd_api::no_counters() }).map_err(|e| format!("kafka source: {e}"))?;
    Ok(EmbeddedBacklog { source: Arc::new(source), positions, description: "an embedded Kafka topic", keep_alive: Box::new(kafka) })
}

#[async_trait]
impl SourceSpec for KafkaSourceConfig {
    fn profile(&self) -> SourceProfile {
        profile::KAFKA
    }

    fn validate(&self) -> Vec<ConfigIssue> {
        KafkaSourceConfig::validate(self)
    }

    async fn open(&self, ctx: &OpenContext) -> Result<OpenedSource, String> {
        // Before the consumer: rdkafka's own error for a refused property carries its value.
        crate::config::check_properties(&self.client_properties()).map_err(|e| format!("source: {e}"))?;
        let source = KafkaSource::new(KafkaOptions { mapping: ctx.mapping.clone(), config: self.clone(), starting_position: ctx.starting_position.clone(), counters: ctx.counters.clone() })
            .map_err(|e| format!("source: {e}"))?;
        Ok(OpenedSource::Stream(Arc::new(source)))
    }

    async fn seeder(&self, _ctx: &SeedContext) -> Result<Box<dyn Seeder>, SeedSetupError> {
        Ok(Box::new(KafkaSeeder::new(self).map_err(|e| SeedSetupError::Setup(e.0))?))
    }
}

//! `type = "rabbitmq"` and `rabbitmq://` destinations as the service's wiring sees them.

use crate::{RabbitMqConnection, RabbitMqDestination, RabbitMqOptions, RabbitMqSeeder, RabbitMqSource, RabbitMqSourceConfig, Publisher};
use async_trait::async_trait;
use esmd_api::config::{from_table, table_issue, ConfigIssue, TableError};
use esmd_api::connector::{parse_spec, Connector, DestinationContext, OpenContext, OpenedSource, SeedContext, SeedSetupError, SourceSpec};
use esmd_api::destination::{Destination, DestinationKind};
use esmd_api::profile::{self, SourceProfile};
use esmd_api::seed::Seeder;
use serde_json::Value;
use std::sync::Arc;

pub struct RabbitMqConnector;

/// Where `destination_config.on_failure.connection` sits, for its issues.
const CONNECTION: &str = "destination_config.on_failure.connection";

/// Enough unacked messages for every batch that may run at once plus one being gathered, and
/// no more: the broker keeps the rest for other consumers (AMQP caps prefetch at 65535).
/// The extra batch is room for acks that wait for an earlier batch (the source sends them
/// together, as one frame) and lets the next batch gather while every slot runs.
pub fn prefetch(batch_size: usize, maximum_concurrency: usize) -> u16 {
    let wanted = batch_size.saturating_mul(maximum_concurrency.max(1).saturating_add(1));
    u16::try_from(wanted).unwrap_or(u16::MAX)
}

#[async_trait]
impl Connector for RabbitMqConnector {
    fn type_name(&self) -> &'static str {
        profile::RABBITMQ.type_name
    }

    fn profile(&self, _table: &Value) -> SourceProfile {
        profile::RABBITMQ
    }

    fn parse(&self, table: Value) -> Result<Arc<dyn SourceSpec>, TableError> {
        parse_spec::<RabbitMqSourceConfig>(table)
    }

    fn destination_kind(&self) -> Option<&'static str> {
        Some("rabbitmq")
    }

    /// A `connection` is RabbitMQ's whatever the destination (the service says when it does
    /// not apply); a `rabbitmq://` destination must not lead back into the source queue.
    fn check_destination(&self, destination: &DestinationKind, connection: Option<&Value>, source: Option<&dyn SourceSpec>) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let connection = match connection.map(|c| from_table::<RabbitMqConnection>(c.clone())).transpose() {
            Ok(c) => c,
            Err(e) => return vec![table_issue(CONNECTION, e)],
        };
        if let Some(c) = &connection {
            issues.extend(c.validate(CONNECTION));
        }
        // The default exchange routes by queue name: publishing to the source queue on the
        // source's broker would feed failed messages back in forever.
        let source = source.and_then(|s| s.as_any().downcast_ref::<RabbitMqSourceConfig>());
        if let (DestinationKind::RabbitMq { exchange, routing_key }, Some(r)) = (destination, source) {
            let same_broker = connection.as_ref().is_none_or(|c| c.uri == r.uri && c.virtual_host == r.virtual_host);
            if exchange.is_empty() && *routing_key == r.queue && same_broker {
                issues.push(ConfigIssue::new(
                    "destination_config.on_failure.destination",
                    format!("destination_config.on_failure.destination = \"{destination}\" is the source queue; failed messages would come back forever"),
                ));
            }
        }
        issues
    }

    async fn destination(&self, ctx: DestinationContext<'_>) -> Result<Arc<dyn Destination>, String> {
        let DestinationKind::RabbitMq { exchange, routing_key } = ctx.destination else {
            return Err(format!("{} is not a rabbitmq destination", ctx.destination));
        };
        // Validation made sure there is a broker: the destination's own or the source's.
        let own = ctx.connection.map(|c| from_table::<RabbitMqConnection>(c.clone())).transpose().map_err(|e| table_issue(CONNECTION, e).message)?;
        let connection = match (own, ctx.source.as_any().downcast_ref::<RabbitMqSourceConfig>()) {
            (Some(c), _) => c,
            (None, Some(r)) => r.connection(),
            (None, None) => return Err(format!("{CONNECTION}: a rabbitmq destination needs a broker")),
        };
        let publisher = Publisher::new(connection, format!("esmd:{}:on-failure", ctx.mapping));
        Ok(Arc::new(RabbitMqDestination::new(publisher, exchange.clone(), routing_key.clone())))
    }
}

#[async_trait]
impl SourceSpec for RabbitMqSourceConfig {
    fn profile(&self) -> SourceProfile {
        profile::RABBITMQ
    }

    fn validate(&self) -> Vec<ConfigIssue> {
        RabbitMqSourceConfig::validate(self)
    }

    fn ordered(&self) -> bool {
        self.ordered
    }

    async fn open(&self, ctx: &OpenContext) -> Result<OpenedSource, String> {
        let source = RabbitMqSource::new(RabbitMqOptions {
            mapping: ctx.mapping.clone(),
            config: self.clone(),
            prefetch: prefetch(ctx.batch_size, ctx.maximum_concurrency),
            region: ctx.region.clone(),
            account: ctx.account.clone(),
        })
        .map_err(|e| e.to_string())?;
        Ok(OpenedSource::Queue(Arc::new(source)))
    }

    async fn seeder(&self, ctx: &SeedContext) -> Result<Box<dyn Seeder>, SeedSetupError> {
        Ok(Box::new(RabbitMqSeeder::new(self, &ctx.mapping)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_holds_one_batch_more_than_runs_at_once() {
        assert_eq!(prefetch(100, 5), 600);
        assert_eq!(prefetch(10, 0), 20);
        assert_eq!(prefetch(10_000, 10), u16::MAX);
    }
}

//! The lease table in DynamoDB: every write that changes who owns a lease or where its shard
//! stands is conditional on `leaseCounter` (and the owner), so two instances can never both
//! believe they hold a lease and write through it.

use super::row::{lease_key, Lease, CHECKPOINT, COUNTER, KEY, OWNER, OWNER_SWITCHES, STATE, SUB_SEQUENCE};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue, ScalarAttributeType, TableStatus};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::Client;
use esmd_aws::AwsClientConfig;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The table could not be reached or refused the call: retry with backoff.
    #[error("lease table {table}: {message}")]
    Service { table: String, message: String },
    /// A row that is not an esmd lease.
    #[error("lease table {table}: {message}")]
    Row { table: String, message: String },
}

/// One lease table (several mappings may share it).
#[derive(Clone)]
pub struct LeaseTable {
    client: Client,
    table: String,
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl LeaseTable {
    /// Credentials from the default chain; `region` and `endpoint_url` as configured.
    pub async fn connect(table: &str, client: &AwsClientConfig) -> Self {
        LeaseTable { client: Client::new(&client.load().await), table: table.to_string() }
    }

    fn service<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(&self, call: &str, e: SdkError<E>) -> LeaseError {
        LeaseError::Service { table: self.table.clone(), message: format!("{call}: {}", DisplayErrorContext(&e)) }
    }

    /// `Ok(false)` when the call was refused because its condition did not hold: the lease
    /// moved on (another owner, another counter) since it was read.
    fn conditional<T, E>(&self, call: &str, result: Result<T, SdkError<E>>) -> Result<Option<T>, LeaseError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match result {
            Ok(out) => Ok(Some(out)),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
            Err(e) => Err(self.service(call, e)),
        }
    }

    fn lease(&self, item: Option<&HashMap<String, AttributeValue>>) -> Result<Lease, LeaseError> {
        let row = |message: String| LeaseError::Row { table: self.table.clone(), message };
        Lease::from_item(item.ok_or_else(|| row("the write returned no row".into()))?).map_err(row)
    }

    /// Creates the table (hash key `leaseKey`, on-demand billing) unless it exists.
    pub async fn create_if_missing(&self) -> Result<(), LeaseError> {
        let out = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(AttributeDefinition::builder().attribute_name(KEY).attribute_type(ScalarAttributeType::S).build().map_err(|e| self.row(e))?)
            .key_schema(KeySchemaElement::builder().attribute_name(KEY).key_type(KeyType::Hash).build().map_err(|e| self.row(e))?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match out {
            Ok(_) => {}
            // Another instance created it first (or it is being created).
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(self.service("CreateTable", e)),
        }
        self.wait_active().await
    }

    /// A new table takes a few seconds to become ACTIVE on DynamoDB; writes before that fail.
    async fn wait_active(&self) -> Result<(), LeaseError> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let out = self.client.describe_table().table_name(&self.table).send().await.map_err(|e| self.service("DescribeTable", e))?;
            let status = out.table().and_then(|t| t.table_status()).cloned();
            if status == Some(TableStatus::Active) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.row(format!("still {status:?} two minutes after CreateTable")));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    fn row(&self, e: impl std::fmt::Display) -> LeaseError {
        LeaseError::Row { table: self.table.clone(), message: e.to_string() }
    }

    /// Every lease of `mapping`, read consistently.
    pub async fn list(&self, mapping: &str) -> Result<Vec<Lease>, LeaseError> {
        let prefix = lease_key(mapping, "");
        let mut leases = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("begins_with(#k, :p)")
                .expression_attribute_names("#k", KEY)
                .expression_attribute_values(":p", AttributeValue::S(prefix.clone()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.service("Scan", e))?;
            for item in out.items() {
                leases.push(Lease::from_item(item).map_err(|e| self.row(e))?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(leases),
            }
        }
    }

    /// One lease, read consistently; `None` when the shard has none.
    pub async fn get(&self, mapping: &str, shard: &str) -> Result<Option<Lease>, LeaseError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(lease_key(mapping, shard)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.service("GetItem", e))?;
        out.item().map(|item| Lease::from_item(item).map_err(|e| self.row(e))).transpose()
    }

    /// Writes a new lease unless one with its key exists. `Ok(false)`: it existed.
    pub async fn create(&self, lease: &Lease) -> Result<bool, LeaseError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(lease.to_item()))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", KEY)
            .send()
            .await;
        Ok(self.conditional("PutItem", out)?.is_some())
    }

    /// Takes `lease` for `owner`, if it is still as it was read (same counter, same owner).
    /// Returns the lease as it now is, or `None` when someone else moved it first.
    pub async fn take(&self, lease: &Lease, owner: &str) -> Result<Option<Lease>, LeaseError> {
        let switch = u64::from(lease.owner.as_deref() != Some(owner));
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(lease.key()))
            .update_expression("SET #o = :me, #c = #c + :one, #s = if_not_exists(#s, :zero) + :switch")
            .expression_attribute_names("#o", OWNER)
            .expression_attribute_names("#c", COUNTER)
            .expression_attribute_names("#s", OWNER_SWITCHES)
            .expression_attribute_values(":me", AttributeValue::S(owner.into()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":switch", n(switch))
            .expression_attribute_values(":seen", n(lease.counter))
            .return_values(ReturnValue::AllNew);
        update = match &lease.owner {
            Some(was) => update.condition_expression("#c = :seen AND #o = :was").expression_attribute_values(":was", AttributeValue::S(was.clone())),
            None => update.condition_expression("#c = :seen AND attribute_not_exists(#o)"),
        };
        match self.conditional("UpdateItem", update.send().await)? {
            Some(out) => Ok(Some(self.lease(out.attributes())?)),
            None => Ok(None),
        }
    }

    /// An update of the lease `owner` holds at `counter`, refused when it is not so any more:
    /// the condition every write through a held lease carries (`#c`, `#o`, `:seen`, `:me`).
    fn owned(&self, mapping: &str, shard: &str, owner: &str, counter: u64) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(lease_key(mapping, shard)))
            .condition_expression("#c = :seen AND #o = :me")
            .expression_attribute_names("#c", COUNTER)
            .expression_attribute_names("#o", OWNER)
            .expression_attribute_values(":seen", n(counter))
            .expression_attribute_values(":me", AttributeValue::S(owner.into()))
    }

    /// Bumps the counter of a lease `owner` holds at `counter`. `None`: the lease was lost.
    pub async fn renew(&self, mapping: &str, shard: &str, owner: &str, counter: u64) -> Result<Option<u64>, LeaseError> {
        let out = self
            .owned(mapping, shard, owner, counter)
            .update_expression("SET #c = #c + :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match self.conditional("UpdateItem", out)? {
            Some(out) => {
                let counter = out.attributes().and_then(|a| a.get(COUNTER)).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
                counter.map(Some).ok_or_else(|| self.row("the renewal returned no leaseCounter"))
            }
            None => Ok(None),
        }
    }

    /// Moves the checkpoint of a lease `owner` holds at `counter` (the fencing condition).
    /// `Ok(false)`: the lease was lost; nothing was written.
    pub async fn checkpoint(
        &self,
        mapping: &str,
        shard: &str,
        owner: &str,
        counter: u64,
        checkpoint: &str,
        window_state: Option<&serde_json::Value>,
    ) -> Result<bool, LeaseError> {
        let mut update = self
            .owned(mapping, shard, owner, counter)
            .expression_attribute_names("#p", CHECKPOINT)
            .expression_attribute_names("#sub", SUB_SEQUENCE)
            .expression_attribute_names("#s", OWNER_SWITCHES)
            .expression_attribute_names("#w", STATE)
            .expression_attribute_values(":cp", AttributeValue::S(checkpoint.into()))
            .expression_attribute_values(":zero", n(0));
        update = match window_state {
            Some(state) => update.update_expression("SET #p = :cp, #sub = :zero, #s = :zero, #w = :state").expression_attribute_values(":state", AttributeValue::S(state.to_string())),
            None => update.update_expression("SET #p = :cp, #sub = :zero, #s = :zero REMOVE #w"),
        };
        Ok(self.conditional("UpdateItem", update.send().await)?.is_some())
    }

    /// Hands a lease back (graceful shutdown): no owner, counter bumped, so the others take it
    /// at once instead of after the failover time. `Ok(false)`: it was not ours any more.
    pub async fn release(&self, mapping: &str, shard: &str, owner: &str, counter: u64) -> Result<bool, LeaseError> {
        let out = self
            .owned(mapping, shard, owner, counter)
            .update_expression("REMOVE #o SET #c = #c + :one")
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        Ok(self.conditional("UpdateItem", out)?.is_some())
    }
}

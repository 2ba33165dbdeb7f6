//! DynamoDB Streams: items written to the table the stream belongs to (named in the stream
//! ARN), each write one stream record. Items carry the table's key attributes (from
//! DescribeTable): the hash key `key-{n % keys}`, the sort key (if any) the record number, plus
//! `payload` (the JSON, a string), `n` and `poison`. Without a sort key a key's later records
//! overwrite its item: the stream then says MODIFY instead of INSERT, and still gets one record
//! per write.

use esmd_aws::retry::retried;
use esmd_api::seed::{retry_delays, SeedRecord, Seeder, TargetError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, KeyType, PutRequest, ScalarAttributeType, WriteRequest};
use aws_sdk_dynamodb::Client;
use crate::DynamoDbStreamsSourceConfig;
use std::collections::{HashMap, HashSet};

/// BatchWriteItem's limit.
const BATCH_ITEMS: usize = 25;

/// A key attribute of the table.
#[derive(Clone, Debug, PartialEq)]
struct KeyAttribute {
    name: String,
    kind: ScalarAttributeType,
}

impl KeyAttribute {
    /// `text` for string keys, `number` for numeric ones, the text's bytes for binary ones.
    fn value(&self, text: String, number: u64) -> AttributeValue {
        match self.kind {
            ScalarAttributeType::N => AttributeValue::N(number.to_string()),
            ScalarAttributeType::B => AttributeValue::B(Blob::new(text.into_bytes())),
            _ => AttributeValue::S(text),
        }
    }
}

pub struct DynamoDbSeeder {
    client: Client,
    table: String,
    hash: KeyAttribute,
    range: Option<KeyAttribute>,
    keys: u64,
}

impl DynamoDbSeeder {
    pub async fn connect(config: &DynamoDbStreamsSourceConfig, keys: u64) -> Result<Self, TargetError> {
        let (client, table) = crate::table_client(config).await.map_err(|e| TargetError(e.to_string()))?;
        let out = retried("DescribeTable", || client.describe_table().table_name(&table).send()).await?;
        let description = out.table().ok_or_else(|| TargetError(format!("DescribeTable {table}: no table description")))?;
        let kind_of = |name: &str| {
            description.attribute_definitions().iter().find(|d| d.attribute_name() == name).map_or(ScalarAttributeType::S, |d| d.attribute_type().clone())
        };
        let key = |t: KeyType| description.key_schema().iter().find(|k| *k.key_type() == t).map(|k| KeyAttribute { name: k.attribute_name().to_string(), kind: kind_of(k.attribute_name()) });
        let hash = key(KeyType::Hash).ok_or_else(|| TargetError(format!("DescribeTable {table}: the table has no hash key")))?;
        Ok(DynamoDbSeeder { range: key(KeyType::Range), hash, client, table, keys })
    }

    fn item(&self, r: &SeedRecord) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::new();
        item.insert("payload".to_string(), AttributeValue::S(String::from_utf8_lossy(&r.payload).into_owned()));
        item.insert("n".to_string(), AttributeValue::N(r.n.to_string()));
        item.insert("poison".to_string(), AttributeValue::Bool(r.poison));
        // Key attributes last: they win over the extras when the names collide.
        item.insert(self.hash.name.clone(), self.hash.value(r.key.clone(), r.n % self.keys));
        if let Some(range) = &self.range {
            // Zero-padded, so string sort keys sort in record order.
            item.insert(range.name.clone(), range.value(format!("{:020}", r.n), r.n));
        }
        item
    }

    /// One BatchWriteItem, then its unprocessed items again, with backoff.
    async fn write_batch(&self, mut requests: Vec<WriteRequest>) -> Result<(), TargetError> {
        let mut delays = retry_delays();
        loop {
            let out = retried("BatchWriteItem", || self.client.batch_write_item().request_items(&self.table, requests.clone()).send()).await?;
            match out.unprocessed_items().and_then(|u| u.get(&self.table)).filter(|u| !u.is_empty()) {
                None => return Ok(()),
                Some(unprocessed) => requests = unprocessed.clone(),
            }
            match delays.next() {
                Some(delay) => {
                    tracing::warn!(items = requests.len(), "BatchWriteItem: unprocessed items; writing them again");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(TargetError(format!("BatchWriteItem: {} items still unprocessed after retries", requests.len()))),
            }
        }
    }
}

/// Batches of at most 25 records whose items have distinct keys: BatchWriteItem refuses two
/// writes of one item (without a sort key, records `keys` apart share one).
fn batches(records: &[SeedRecord], has_range: bool) -> Vec<&[SeedRecord]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut seen = HashSet::new();
    for (i, r) in records.iter().enumerate() {
        let item_key = if has_range { format!("{}/{}", r.key, r.n) } else { r.key.clone() };
        if i - start == BATCH_ITEMS || seen.contains(&item_key) {
            out.push(&records[start..i]);
            start = i;
            seen.clear();
        }
        seen.insert(item_key);
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

#[async_trait::async_trait]
impl Seeder for DynamoDbSeeder {
    fn target(&self) -> String {
        format!("table {}", self.table)
    }

    fn chunk(&self) -> usize {
        4 * BATCH_ITEMS
    }

    async fn write(&mut self, records: &[SeedRecord]) -> Result<(), TargetError> {
        for batch in batches(records, self.range.is_some()) {
            let requests = batch
                .iter()
                .map(|r| PutRequest::builder().set_item(Some(self.item(r))).build().map(|p| WriteRequest::builder().put_request(p).build()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TargetError(format!("BatchWriteItem request: {e}")))?;
            self.write_batch(requests).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: u64, keys: u64) -> Vec<SeedRecord> {
        (0..n).map(|n| SeedRecord { n, key: format!("key-{}", n % keys), poison: false, payload: vec![] }).collect()
    }

    #[test]
    fn a_batch_never_writes_one_item_twice() {
        let sizes = |b: Vec<&[SeedRecord]>| b.iter().map(|b| b.len()).collect::<Vec<_>>();
        assert_eq!(sizes(batches(&records(100, 1000), false)), [25, 25, 25, 25]);
        assert_eq!(sizes(batches(&records(20, 7), false)), [7, 7, 6]);
        // With a sort key every record is its own item.
        assert_eq!(sizes(batches(&records(60, 1), true)), [25, 25, 10]);
    }

    #[test]
    fn key_values_follow_the_attribute_type() {
        let a = |kind| KeyAttribute { name: "pk".into(), kind };
        assert_eq!(a(ScalarAttributeType::S).value("key-3".into(), 3), AttributeValue::S("key-3".into()));
        assert_eq!(a(ScalarAttributeType::N).value("key-3".into(), 3), AttributeValue::N("3".into()));
        assert_eq!(a(ScalarAttributeType::B).value("key-3".into(), 3), AttributeValue::B(Blob::new(b"key-3".to_vec())));
    }
}

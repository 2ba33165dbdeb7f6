//! AWS Glue Schema Registry: `GetSchemaVersion` by the schema version id a record's header
//! names. Glue schemas have no references.

use super::format::{DataFormat, Definition};
use super::registry::{FetchError, Fetched, Registry};
use super::wire::SchemaRef;
use async_trait::async_trait;
use aws_sdk_glue::operation::get_schema_version::GetSchemaVersionError;
use aws_sdk_glue::types::DataFormat as GlueFormat;
use esmd_aws::retry::{DisplayErrorContext, ProvideErrorMetadata};
use esmd_aws::{AwsClientConfig, LazyClient};

pub struct Glue {
    arn: String,
    client: LazyClient<aws_sdk_glue::Client>,
}

impl Glue {
    /// `region`: the configured one, else the registry ARN's.
    pub fn new(arn: &str, region: String, endpoint_url: Option<String>) -> Glue {
        Glue { arn: arn.to_string(), client: LazyClient::new(AwsClientConfig::new(Some(region), endpoint_url), aws_sdk_glue::Client::new) }
    }
}

#[async_trait]
impl Registry for Glue {
    async fn fetch(&self, schema: &SchemaRef) -> Result<Fetched, FetchError> {
        let SchemaRef::Glue(id) = schema else {
            return Err(FetchError::NotFound(format!("schema {schema} is not a Glue schema version id")));
        };
        let client = self.client.get().await;
        let out = client.get_schema_version().schema_version_id(id.to_string()).send().await.map_err(|e| {
            let what = format!("GetSchemaVersion {id}");
            match e.as_service_error() {
                Some(GetSchemaVersionError::EntityNotFoundException(_)) | Some(GetSchemaVersionError::InvalidInputException(_)) => {
                    FetchError::NotFound(format!("{what}: {}", e.message().unwrap_or("not found")))
                }
                // Credentials, permissions, throttles, the endpoint: records wait either way.
                _ => FetchError::Unavailable(format!("{what}: {}", DisplayErrorContext(&e))),
            }
        })?;
        let format = match out.data_format() {
            Some(GlueFormat::Avro) => DataFormat::Avro,
            Some(GlueFormat::Protobuf) => DataFormat::Protobuf,
            Some(GlueFormat::Json) => DataFormat::Json,
            other => return Err(FetchError::NotFound(format!("schema version {id}: unsupported data format {other:?}"))),
        };
        let text = out.schema_definition().ok_or_else(|| FetchError::NotFound(format!("schema version {id} has no definition")))?;
        Ok(Fetched { format, definition: Definition { text: text.to_string(), imports: Default::default() } })
    }

    fn describe(&self) -> &str {
        &self.arn
    }
}

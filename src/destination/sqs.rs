//! `arn:aws:sqs:<region>:<account>:<queue>`: the failure record is the message body (AWS's
//! shape, no payload). The queue URL is looked up once, on the first delivery, so a queue
//! created after esmd started still works.

use super::aws::fit_record;
use super::{Destination, DestinationError, Failure};
use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use tokio::sync::OnceCell;

/// SQS's message size limit (moto and older regions: 256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

pub struct SqsDestination {
    client: aws_sdk_sqs::Client,
    account: String,
    queue: String,
    queue_url: OnceCell<String>,
    arn: String,
}

impl SqsDestination {
    pub fn new(sdk: &aws_config::SdkConfig, arn: &str, account: &str, queue: &str) -> Self {
        SqsDestination {
            client: aws_sdk_sqs::Client::new(sdk),
            account: account.to_string(),
            queue: queue.to_string(),
            queue_url: OnceCell::new(),
            arn: arn.to_string(),
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> DestinationError {
        DestinationError { destination: self.arn.clone(), message: message.to_string() }
    }

    async fn queue_url(&self) -> Result<&String, DestinationError> {
        self.queue_url
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .get_queue_url()
                    .queue_name(&self.queue)
                    .queue_owner_aws_account_id(&self.account)
                    .send()
                    .await
                    .map_err(|e| self.error(format!("GetQueueUrl: {}", DisplayErrorContext(&e))))?;
                out.queue_url().map(str::to_owned).ok_or_else(|| self.error("GetQueueUrl returned no URL"))
            })
            .await
    }
}

#[async_trait]
impl Destination for SqsDestination {
    async fn deliver(&self, failure: &Failure) -> Result<(), DestinationError> {
        let body = fit_record(&failure.record, MAX_MESSAGE_BYTES).ok_or_else(|| self.error("failure record exceeds the SQS message size limit"))?;
        let url = self.queue_url().await?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| self.error(format!("SendMessage: {}", DisplayErrorContext(&e))))?;
        Ok(())
    }

    fn describe(&self) -> &str {
        &self.arn
    }
}

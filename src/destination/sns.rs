//! `arn:aws:sns:<region>:<account>:<topic>`: the failure record is the notification's
//! `Message` (AWS's shape, no payload). SNS takes 256 KiB at most: a record over that (only an
//! SQS batch of thousands of messages, whose batch info lists every messageId) is sent with
//! its lists cut short and `"truncated": true`.

use super::aws::fit_record;
use super::{Destination, DestinationError, Failure};
use async_trait::async_trait;
use aws_sdk_sns::error::DisplayErrorContext;

/// SNS's message size limit.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

pub struct SnsDestination {
    client: aws_sdk_sns::Client,
    arn: String,
}

impl SnsDestination {
    pub fn new(sdk: &aws_config::SdkConfig, arn: &str) -> Self {
        SnsDestination { client: aws_sdk_sns::Client::new(sdk), arn: arn.to_string() }
    }

    fn error(&self, message: impl std::fmt::Display) -> DestinationError {
        DestinationError { destination: self.arn.clone(), message: message.to_string() }
    }
}

#[async_trait]
impl Destination for SnsDestination {
    async fn deliver(&self, failure: &Failure) -> Result<(), DestinationError> {
        let message = fit_record(&failure.record, MAX_MESSAGE_BYTES).ok_or_else(|| self.error("failure record exceeds the SNS message size limit"))?;
        self.client
            .publish()
            .topic_arn(&self.arn)
            .message(message)
            .send()
            .await
            .map_err(|e| self.error(format!("Publish: {}", DisplayErrorContext(&e))))?;
        Ok(())
    }

    fn describe(&self) -> &str {
        &self.arn
    }
}

//! Where the SDK client connects and with which credentials.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Region, endpoint and credentials of one source's client.
#[derive(Clone, Debug, Default)]
pub struct ClientSettings {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// A ready SDK configuration (explicit credentials, tests); region and endpoint above
    /// override it. Without it the SDK's default chain is used (environment, profile, IMDS).
    pub sdk: Option<SdkConfig>,
}

impl ClientSettings {
    pub async fn load(&self) -> SdkConfig {
        let mut builder = match &self.sdk {
            Some(sdk) => sdk.to_builder(),
            None => {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(region) = &self.region {
                    loader = loader.region(Region::new(region.clone()));
                }
                loader.load().await.to_builder()
            }
        };
        if let Some(region) = &self.region {
            builder = builder.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        builder.build()
    }
}

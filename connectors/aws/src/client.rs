//! Where an AWS client connects and with which credentials.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use esmd_api::config::ConfigIssue;
use std::future::Future;
use tokio::sync::OnceCell;

/// The region requests are signed with when an endpoint override points at an emulator and
/// nothing else names one: emulators accept any region, but a request must be signed with one.
pub const EMULATOR_REGION: &str = "us-east-1";

/// No region in the config, the SDK's chain (AWS_REGION, profile), the resource's ARN or URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no region configured, in the environment, or in {0}")]
pub struct NoRegion(pub String);

/// Region, endpoint and credentials of one client.
#[derive(Clone, Debug, Default)]
pub struct AwsClientConfig {
    /// The region asked for (a config key, an ARN's region). `None`: the SDK's chain decides.
    pub region: Option<String>,
    /// An endpoint override: LocalStack, moto, kinesis-local, a VPC endpoint.
    pub endpoint_url: Option<String>,
    /// A ready SDK configuration (explicit credentials, tests). Without it the SDK's default
    /// chain is used: environment, profile, SSO, web identity, container and instance metadata.
    pub sdk: Option<SdkConfig>,
}

impl AwsClientConfig {
    pub fn new(region: Option<String>, endpoint_url: Option<String>) -> Self {
        AwsClientConfig { region, endpoint_url, sdk: None }
    }

    /// The same, built on a ready SDK configuration.
    pub fn with_sdk(mut self, sdk: Option<SdkConfig>) -> Self {
        self.sdk = sdk;
        self
    }

    /// The SDK configuration with this region (when set) and endpoint. The region may still
    /// be unset when neither this nor the SDK's chain names one: see [`AwsClientConfig::resolve`].
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
        builder.behavior_version(BehaviorVersion::latest()).build()
    }

    /// [`AwsClientConfig::load`] with the region always set: this config's, else the SDK
    /// chain's, else `hint` (the region in a queue URL or function ARN), else
    /// [`EMULATOR_REGION`] when an endpoint override is set. `what` names the resource for the
    /// error.
    pub async fn resolve(&self, hint: Option<&str>, what: &str) -> Result<SdkConfig, NoRegion> {
        let sdk = self.load().await;
        if sdk.region().is_some() {
            return Ok(sdk);
        }
        let emulator = sdk.endpoint_url().is_some();
        let region = hint.or(emulator.then_some(EMULATOR_REGION)).ok_or_else(|| NoRegion(what.to_string()))?;
        Ok(with_region(sdk, region))
    }

    /// [`AwsClientConfig::load`], with `fallback` as the region when nothing else names one
    /// (S3's global endpoint and emulators accept any).
    pub async fn load_or(&self, fallback: &str) -> SdkConfig {
        let sdk = self.load().await;
        match sdk.region() {
            Some(_) => sdk,
            None => with_region(sdk, fallback),
        }
    }
}

fn with_region(sdk: SdkConfig, region: &str) -> SdkConfig {
    sdk.into_builder().region(Region::new(region.to_string())).build()
}

/// An SDK client made on first use, from an [`AwsClientConfig`].
pub struct LazyClient<C> {
    config: AwsClientConfig,
    make: fn(&SdkConfig) -> C,
    client: OnceCell<C>,
}

impl<C> LazyClient<C> {
    /// `make` is the service crate's `Client::new`.
    pub fn new(config: AwsClientConfig, make: fn(&SdkConfig) -> C) -> Self {
        LazyClient { config, make, client: OnceCell::new() }
    }

    pub async fn get(&self) -> &C {
        self.client.get_or_init(|| async { (self.make)(&self.config.load().await) }).await
    }
}

/// Calls `page` with each continuation token until a page hands none back, collecting what
/// each page yields: the paging loop of ListShards and DescribeStream. An empty page or a
/// token handed back twice also ends it, so an emulator that repeats itself cannot loop us.
pub async fn all_pages<T, F, Fut, E>(mut page: F) -> Result<Vec<T>, E>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), E>>,
{
    let mut items = Vec::new();
    let mut token = None;
    loop {
        let (mut got, next) = page(token.clone()).await?;
        let empty = got.is_empty();
        items.append(&mut got);
        match next {
            Some(t) if !t.is_empty() && !empty && token.as_deref() != Some(t.as_str()) => token = Some(t),
            _ => return Ok(items),
        }
    }
}

/// `key` (`source.region`) is an AWS region name such as `us-east-1`.
pub fn check_region(issues: &mut Vec<ConfigIssue>, key: &str, region: &str) {
    if region.is_empty() || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        issues.push(ConfigIssue::new(key, format!("{key} = {region:?} is not a region name (like us-east-1)")));
    }
}

/// `key` (`source.endpoint_url`) is an http(s) URL.
pub fn check_endpoint_url(issues: &mut Vec<ConfigIssue>, key: &str, url: &str) {
    esmd_api::config::check_http_url(issues, key, url);
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::Region;

    fn base(region: Option<&str>) -> SdkConfig {
        let mut b = SdkConfig::builder().behavior_version(BehaviorVersion::latest());
        if let Some(r) = region {
            b = b.region(Region::new(r.to_string()));
        }
        b.build()
    }

    #[tokio::test]
    async fn region_comes_from_the_config_then_the_sdk_then_the_hint_then_the_emulator() {
        let given = |region: Option<&str>, endpoint: Option<&str>, sdk_region: Option<&str>| AwsClientConfig {
            region: region.map(str::to_owned),
            endpoint_url: endpoint.map(str::to_owned),
            sdk: Some(base(sdk_region)),
        };
        let region = |sdk: SdkConfig| sdk.region().map(|r| r.to_string());
        assert_eq!(region(given(Some("eu-west-1"), None, Some("us-west-2")).resolve(Some("ap-south-1"), "x").await.unwrap()), Some("eu-west-1".into()));
        assert_eq!(region(given(None, None, Some("us-west-2")).resolve(Some("ap-south-1"), "x").await.unwrap()), Some("us-west-2".into()));
        assert_eq!(region(given(None, None, None).resolve(Some("ap-south-1"), "x").await.unwrap()), Some("ap-south-1".into()));
        assert_eq!(region(given(None, Some("http://127.0.0.1:5000"), None).resolve(None, "x").await.unwrap()), Some(EMULATOR_REGION.into()));
        assert_eq!(given(None, None, None).resolve(None, "the queue URL").await.unwrap_err().to_string(), "no region configured, in the environment, or in the queue URL");
        let sdk = given(None, Some("http://127.0.0.1:5000"), None).load().await;
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:5000"));
    }

    #[tokio::test]
    async fn pages_are_followed_until_no_token() {
        let pages = all_pages(|token: Option<String>| async move {
            Ok::<_, ()>(match token.as_deref() {
                None => (vec![1, 2], Some("a".to_string())),
                Some("a") => (vec![3], Some("b".to_string())),
                _ => (vec![4], None),
            })
        })
        .await
        .unwrap();
        assert_eq!(pages, [1, 2, 3, 4]);
        // An empty page ends the loop even with a token (a service that repeats its token).
        let stuck = all_pages(|_| async { Ok::<_, ()>((Vec::<u8>::new(), Some("again".to_string()))) }).await.unwrap();
        assert!(stuck.is_empty());
        // So does a token handed back twice.
        let repeated = all_pages(|_| async { Ok::<_, ()>((vec![1], Some("same".to_string()))) }).await.unwrap();
        assert_eq!(repeated, [1, 1]);
    }

    #[test]
    fn region_and_endpoint_checks_name_the_key() {
        let mut issues = Vec::new();
        check_region(&mut issues, "source.region", "EU");
        check_region(&mut issues, "source.region", "eu-west-1");
        check_endpoint_url(&mut issues, "source.endpoint_url", "localhost:4566");
        check_endpoint_url(&mut issues, "source.endpoint_url", "http://127.0.0.1:4566");
        let paths: Vec<_> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["source.region", "source.endpoint_url"]);
    }
}

//! The Lambda invoker: the Invoke API (`RequestResponse`) through aws-sdk-lambda, against AWS or,
//! with an endpoint override, LocalStack, moto or the Lambda runtime interface emulator.
//!
//! How an answer is read (DESIGN §6):
//!
//! | answer                                                      | result                          |
//! |-------------------------------------------------------------|---------------------------------|
//! | 200, no `X-Amz-Function-Error`                              | `Ok`                            |
//! | 200 with `X-Amz-Function-Error` (`FunctionError`)           | `Ok`, function error            |
//! | emulator only: 200 with a Lambda error object, no header    | `Ok`, function error            |
//! | an error with no error code whose body is a Lambda error object | `Ok`, function error (real status) |
//! | client-side timeout while waiting for the function         | `Ok`, function error (as HTTP)  |
//! | `TooManyRequestsException`, any throttling code, 429        | `Throttled`, with Retry-After   |
//! | payload too large, function not found, access denied, bad request, other 4xx | `Rejected` |
//! | service 5xx (ServiceException, EC2/ENI/EFS/KMS/SnapStart setup errors) | `Unavailable`     |
//! | function being updated, not ready, expired credentials      | `Unavailable`                   |
//! | connect/DNS/TLS failure, credentials not resolvable         | `Unavailable`                   |
//!
//! Emulators do not all mark function errors the way Lambda does: the runtime interface emulator
//! answers 200 with the error object and no header, `cargo lambda watch` answers 500 with it and
//! no error code. With an endpoint override (`endpoint_url`, `AWS_ENDPOINT_URL[_LAMBDA]`) the
//! invoker therefore also reads the body (the rule is in [`super::http`]); against AWS itself
//! only the header counts, as it does for Lambda's own event source mappings.
//!
//! The SDK's own retries are off: the engine retries with its own backoff and accounts attempts
//! the way AWS does, which SDK-internal retries would hide (a throttle retried three times inside
//! the SDK would look like one slow call).

use super::http::{
    connect_timeout, error_chain, looks_like_function_error, parse_retry_after, timeout_response, InvokerBuildError,
    STAND_IN_ACCOUNT,
};
use super::{InvokeError, InvokeResponse, Invoker};
use async_trait::async_trait;
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError as SdkInvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use bytes::Bytes;
use esmd_aws::AwsClientConfig;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Semaphore;

/// Longest wait for the one-off lookup of the function's account at start.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct LambdaInvokerOptions {
    /// Name (`my-function`, `my-function:alias`), ARN, or partial ARN
    /// (`123456789012:function:my-function`).
    pub function_name: String,
    /// Version or alias.
    pub qualifier: Option<String>,
    /// Default: the SDK's chain (AWS_REGION, profile, IMDS), then the ARN's region, then
    /// `us-east-1` when `endpoint_url` points at an emulator.
    pub region: Option<String>,
    /// LocalStack, moto, the runtime interface emulator.
    pub endpoint_url: Option<String>,
    /// Longest wait for one invoke; set it above the function's own timeout.
    pub timeout: Duration,
    /// Most invokes in flight at once through this invoker.
    pub max_concurrency: usize,
    /// The account in the function's ARN when `function_name` names none and the lookup finds
    /// none (no permission, an emulator without the API). `esmd run` passes `[aws] account`;
    /// `None` is `000000000000`.
    pub account: Option<String>,
}

/// Calls a Lambda function. Cheap to share: one SDK client (pooled connections), one
/// concurrency limit.
#[derive(Debug)]
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
    function_name: String,
    qualifier: Option<String>,
    function_arn: String,
    timeout: Duration,
    permits: Arc<Semaphore>,
    /// An endpoint override (options, AWS_ENDPOINT_URL, the SDK config): an emulator, whose
    /// function errors may lack the header.
    emulator: bool,
}

impl LambdaInvoker {
    /// Region and credentials from the SDK's default chain (environment, profile, SSO, web
    /// identity, container and instance metadata).
    pub async fn new(options: LambdaInvokerOptions) -> Result<Self, InvokerBuildError> {
        Self::build(options, None).await
    }

    /// Built on a given SDK configuration (explicit credentials, a shared config, tests).
    /// `options` override its region and endpoint.
    ///
    /// When `function_name` is a plain name, the function's account is looked up once with
    /// GetFunctionConfiguration so failure records show the real ARN; without that permission
    /// (or against an emulator without that API) the ARN uses `options.account`.
    pub async fn from_sdk_config(
        options: LambdaInvokerOptions,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, InvokerBuildError> {
        Self::build(options, Some(sdk.clone())).await
    }

    async fn build(options: LambdaInvokerOptions, sdk: Option<aws_config::SdkConfig>) -> Result<Self, InvokerBuildError> {
        check_options(&options)?;
        let name = FunctionName::parse(&options.function_name)?;
        let qualifier = options.qualifier.clone().filter(|q| !q.is_empty());
        if let (Some(in_name), Some(given)) = (&name.qualifier, &qualifier) {
            if in_name != given {
                // Lambda refuses every invoke of such a pair; say so at start instead.
                return Err(InvokerBuildError::InvalidFunctionName {
                    name: options.function_name.clone(),
                    reason: format!("its qualifier {in_name:?} contradicts qualifier {given:?}"),
                });
            }
        }
        let sdk = AwsClientConfig::new(options.region.clone(), options.endpoint_url.clone())
            .with_sdk(sdk)
            .resolve(name.region.as_deref(), "the function ARN")
            .await
            .map_err(|_| InvokerBuildError::NoRegion(options.function_name.clone()))?;
        let emulator = sdk.endpoint_url().is_some();
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();

        let config = aws_sdk_lambda::config::Builder::from(&sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(connect_timeout(options.timeout))
                    .operation_timeout(options.timeout)
                    .build(),
            );
        let client = aws_sdk_lambda::Client::from_conf(config.build());

        let account = match &name.account {
            Some(account) => account.clone(),
            None => lookup_account(&client, &options.function_name, qualifier.as_deref())
                .await
                .or_else(|| options.account.clone())
                .unwrap_or_else(|| STAND_IN_ACCOUNT.to_owned()),
        };
        let function_arn = name.arn(&region, &account, qualifier.as_deref());
        Ok(Self {
            client,
            function_name: options.function_name,
            qualifier,
            function_arn,
            timeout: options.timeout,
            permits: Arc::new(Semaphore::new(options.max_concurrency)),
            emulator,
        })
    }

    pub fn client(&self) -> &aws_sdk_lambda::Client {
        &self.client
    }
}

#[async_trait]
impl Invoker for LambdaInvoker {
    async fn invoke(&self, payload: Bytes) -> Result<InvokeResponse, InvokeError> {
        let _permit = super::admit(&self.permits, &payload, self.max_payload_bytes()).await?;
        let result = self
            .client
            .invoke()
            .function_name(&self.function_name)
            .set_qualifier(self.qualifier.clone())
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload.to_vec()))
            .send()
            .await;
        match result {
            Ok(mut out) => {
                let body = out.payload.take().map(|b| Bytes::from(b.into_inner())).unwrap_or_default();
                let function_error = match out.function_error().filter(|e| !e.is_empty()) {
                    Some(e) => Some(e.to_owned()),
                    None if self.emulator && looks_like_function_error(&body) => Some("Unhandled".to_owned()),
                    None => None,
                };
                Ok(InvokeResponse {
                    status_code: u16::try_from(out.status_code()).unwrap_or(200),
                    executed_version: out.executed_version().unwrap_or("$LATEST").to_owned(),
                    function_error,
                    body,
                })
            }
            Err(e) => classify(e, self.timeout),
        }
    }

    fn function_arn(&self) -> &str {
        &self.function_arn
    }
}

fn check_options(options: &LambdaInvokerOptions) -> Result<(), InvokerBuildError> {
    if options.timeout.is_zero() {
        return Err(InvokerBuildError::Zero("timeout"));
    }
    if options.max_concurrency == 0 {
        return Err(InvokerBuildError::Zero("max_concurrency"));
    }
    Ok(())
}

/// Sorts an SDK error into throttle / rejected / unavailable, or a function error for a client
/// timeout.
fn classify(e: SdkError<SdkInvokeError, HttpResponse>, timeout: Duration) -> Result<InvokeResponse, InvokeError> {
    match e {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let header_retry_after = ctx.raw().headers().get("retry-after").map(str::to_owned);
            let raw_body = ctx.raw().body().bytes().map(Bytes::copy_from_slice).unwrap_or_default();
            let err = ctx.into_err();
            let code = err.code().unwrap_or("").to_owned();
            // Lambda always names its own errors; an unnamed error carrying a function's error
            // object is an emulator reporting a function error.
            if code.is_empty() && looks_like_function_error(&raw_body) {
                return Ok(InvokeResponse {
                    status_code: status,
                    executed_version: "$LATEST".to_owned(),
                    function_error: Some("Unhandled".to_owned()),
                    body: raw_body,
                });
            }
            let message = format!(
                "{} ({status}): {}",
                if code.is_empty() { "Lambda error" } else { &code },
                err.message().unwrap_or("no message")
            );
            match kind_of(&code, status) {
                Kind::Throttle => {
                    let modeled = match &err {
                        SdkInvokeError::TooManyRequestsException(t) => t.retry_after_seconds().map(str::to_owned),
                        _ => None,
                    };
                    let retry_after =
                        modeled.or(header_retry_after).and_then(|v| parse_retry_after(&v, SystemTime::now()));
                    Err(InvokeError::Throttled { retry_after })
                }
                Kind::Rejected => Err(InvokeError::Rejected(message)),
                Kind::Unavailable => Err(InvokeError::Unavailable(message)),
            }
        }
        // Waiting for the function took longer than the invoke timeout: like the HTTP invoker
        // and like Lambda's own timeout, the function ran too long.
        SdkError::TimeoutError(_) => Ok(timeout_response(timeout)),
        // Connect, DNS and TLS failures, and credentials that could not be resolved (the SDK
        // reports those while signing, before sending): the function never ran.
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            Err(InvokeError::Unavailable(DisplayErrorContext(&e).to_string()))
        }
        // An answer that is not Lambda's (a proxy's error page, a broken emulator). Retrying
        // without spending attempts keeps the batch safe while an operator looks at the log.
        SdkError::ResponseError(_) => {
            Err(InvokeError::Unavailable(format!("unreadable Lambda response: {}", DisplayErrorContext(&e))))
        }
        // SdkError is non-exhaustive.
        other => Err(InvokeError::Unavailable(error_chain(&other))),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Throttle,
    Rejected,
    Unavailable,
}

/// Lambda error codes by what retrying can achieve. Codes not named fall back to the status:
/// 429 throttle, 5xx unavailable, other 4xx rejected.
fn kind_of(code: &str, status: u16) -> Kind {
    match code {
        "TooManyRequestsException"
        | "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "RequestLimitExceeded" => Kind::Throttle,
        // Lambda's own failure, or the function or the credentials not ready yet: all of them
        // fix themselves.
        "ResourceConflictException"
        | "ResourceNotReadyException"
        | "SnapStartNotReadyException"
        | "CodeArtifactUserPendingException"
        | "ExpiredTokenException"
        | "RequestExpired"
        | "RequestTimeTooSkewed"
        | "ServiceException" => Kind::Unavailable,
        "RequestTooLargeException"
        | "SerializedRequestEntityTooLargeException"
        | "ResourceNotFoundException"
        | "AccessDeniedException"
        | "InvalidRequestContentException"
        | "InvalidParameterValueException"
        | "UnsupportedMediaTypeException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "MissingAuthenticationTokenException"
        | "ModeNotSupportedException"
        | "RecursiveInvocationException"
        | "NoPublishedVersionException" => Kind::Rejected,
        _ if status == 429 => Kind::Throttle,
        _ if status >= 500 => Kind::Unavailable,
        _ if status >= 400 => Kind::Rejected,
        // A non-error status with an error code is not something Lambda sends; do not lose the
        // batch over it.
        _ => Kind::Unavailable,
    }
}

/// The forms Lambda accepts as FunctionName, split into what an ARN needs.
#[derive(Debug, PartialEq, Eq)]
struct FunctionName {
    partition: Option<String>,
    region: Option<String>,
    account: Option<String>,
    name: String,
    qualifier: Option<String>,
}

impl FunctionName {
    fn parse(raw: &str) -> Result<Self, InvokerBuildError> {
        let invalid =
            |reason: &str| InvokerBuildError::InvalidFunctionName { name: raw.to_owned(), reason: reason.to_owned() };
        let parts: Vec<&str> = raw.split(':').collect();
        let parsed = match parts.as_slice() {
            ["arn", partition, "lambda", region, account, "function", name, rest @ ..] if rest.len() <= 1 => Self {
                partition: Some((*partition).to_owned()),
                region: Some((*region).to_owned()),
                account: Some((*account).to_owned()),
                name: (*name).to_owned(),
                qualifier: rest.first().map(|q| (*q).to_owned()),
            },
            ["arn", ..] => {
                return Err(invalid(
                    "not a Lambda function ARN (arn:<partition>:lambda:<region>:<account>:function:<name>)",
                ))
            }
            [account, "function", name, rest @ ..] if rest.len() <= 1 => Self {
                partition: None,
                region: None,
                account: Some((*account).to_owned()),
                name: (*name).to_owned(),
                qualifier: rest.first().map(|q| (*q).to_owned()),
            },
            [name] | [name, _] => Self {
                partition: None,
                region: None,
                account: None,
                name: (*name).to_owned(),
                qualifier: parts.get(1).map(|q| (*q).to_owned()),
            },
            _ => return Err(invalid("expected a name, name:qualifier, an ARN or <account>:function:<name>")),
        };
        if parsed.name.is_empty() || parsed.account.as_deref() == Some("") || parsed.qualifier.as_deref() == Some("") {
            return Err(invalid("empty name, account or qualifier"));
        }
        Ok(parsed)
    }

    /// The qualifier in the name wins over the option, as Lambda resolves it.
    fn arn(&self, region: &str, account: &str, qualifier: Option<&str>) -> String {
        let partition = self.partition.clone().unwrap_or_else(|| partition_of(region).to_owned());
        let region = self.region.as_deref().unwrap_or(region);
        let account = self.account.as_deref().unwrap_or(account);
        let mut arn = format!("arn:{partition}:lambda:{region}:{account}:function:{}", self.name);
        if let Some(q) = self.qualifier.as_deref().or(qualifier) {
            arn.push(':');
            arn.push_str(q);
        }
        arn
    }
}

fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// The account in the function's real ARN, or None when it cannot be read (no permission, an
/// emulator without the API, the endpoint down): the ARN is cosmetic and must not stop a start.
async fn lookup_account(
    client: &aws_sdk_lambda::Client,
    function_name: &str,
    qualifier: Option<&str>,
) -> Option<String> {
    let request = client
        .get_function_configuration()
        .function_name(function_name)
        .set_qualifier(qualifier.map(str::to_owned))
        .send();
    match tokio::time::timeout(LOOKUP_TIMEOUT, request).await {
        Ok(Ok(config)) => {
            let account = config.function_arn()?.split(':').nth(4)?;
            (!account.is_empty()).then(|| account.to_owned())
        }
        Ok(Err(e)) => {
            tracing::debug!(function = function_name, error = %DisplayErrorContext(&e), "function ARN lookup failed; using a stand-in account");
            None
        }
        Err(_) => {
            tracing::debug!(function = function_name, "function ARN lookup timed out; using a stand-in account");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_name_forms() {
        let arn = |raw: &str, q: Option<&str>| FunctionName::parse(raw).unwrap().arn("eu-west-1", "000000000000", q);
        assert_eq!(arn("f", None), "arn:aws:lambda:eu-west-1:000000000000:function:f");
        assert_eq!(arn("f", Some("live")), "arn:aws:lambda:eu-west-1:000000000000:function:f:live");
        assert_eq!(arn("f:v2", Some("live")), "arn:aws:lambda:eu-west-1:000000000000:function:f:v2");
        assert_eq!(arn("123456789012:function:f", None), "arn:aws:lambda:eu-west-1:123456789012:function:f");
        assert_eq!(
            arn("arn:aws-cn:lambda:cn-north-1:123456789012:function:f:3", None),
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:f:3"
        );
        assert_eq!(
            FunctionName::parse("f").unwrap().arn("cn-north-1", "1", None),
            "arn:aws-cn:lambda:cn-north-1:1:function:f"
        );
        for bad in ["", "a:b:c", "arn:aws:s3:::bucket", "f:", "arn:aws:lambda:r:a:function:f:q:x"] {
            assert!(FunctionName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_kinds() {
        assert_eq!(kind_of("TooManyRequestsException", 429), Kind::Throttle);
        assert_eq!(kind_of("", 429), Kind::Throttle);
        assert_eq!(kind_of("ServiceException", 500), Kind::Unavailable);
        assert_eq!(kind_of("EC2UnexpectedException", 502), Kind::Unavailable);
        assert_eq!(kind_of("ResourceConflictException", 409), Kind::Unavailable);
        assert_eq!(kind_of("ResourceNotFoundException", 404), Kind::Rejected);
        assert_eq!(kind_of("RequestTooLargeException", 413), Kind::Rejected);
        assert_eq!(kind_of("AccessDeniedException", 403), Kind::Rejected);
        assert_eq!(kind_of("SomethingNew", 400), Kind::Rejected);
        assert_eq!(kind_of("SomethingNew", 503), Kind::Unavailable);
    }
}

//! AWS SDK clients (S3, SQS, DynamoDB, SSM) built once per process from the environment,
//! with local-emulator conveniences (path-style S3, dummy credentials) when an endpoint
//! override is configured; plus the shared classification of SDK errors.

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Region used when neither the options nor the environment name one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// How to build [`AwsClients`]. `Default` means "everything from the environment".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// Endpoint override for every service (e.g. the local emulator). When set, S3 uses
    /// path-style addressing and, if no credentials are configured, dummy ones.
    pub endpoint_url: Option<String>,
    /// Region; falls back to the SDK's provider chain, then to `us-east-1`.
    pub region: Option<String>,
}

impl AwsOptions {
    /// Options from the process environment: `AWS_ENDPOINT_URL` (if non-empty).
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Options read through `lookup` instead of the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            endpoint_url: lookup("AWS_ENDPOINT_URL").filter(|v| !v.is_empty()),
            region: None,
        }
    }

    /// Options pointing every client at `endpoint` (the local emulator).
    pub fn local(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint_url: Some(endpoint.into()),
            region: None,
        }
    }
}

/// The SDK clients every function needs. Cheap to clone (clients are `Arc`s inside).
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ssm: aws_sdk_ssm::Client,
    endpoint_url: Option<String>,
}

impl AwsClients {
    /// Builds the clients from the process environment. Call once per process (cold start).
    pub async fn from_env() -> Self {
        Self::load(AwsOptions::from_env()).await
    }

    /// Builds the clients from explicit options (and the environment for what they leave open).
    pub async fn load(options: AwsOptions) -> Self {
        let explicit = options.region.clone().map(Region::new);
        let region = if options.endpoint_url.is_some() {
            // Local emulator: never wait on the instance-metadata lookup of the default chain.
            RegionProviderChain::first_try(explicit)
                .or_else(EnvironmentVariableRegionProvider::new())
                .or_else(Region::from_static(DEFAULT_REGION))
        } else {
            RegionProviderChain::first_try(explicit)
                .or_default_provider()
                .or_else(Region::from_static(DEFAULT_REGION))
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
        if let Some(endpoint) = &options.endpoint_url {
            loader = loader.endpoint_url(endpoint);
            if !credentials_configured(|k| std::env::var_os(k).is_some()) {
                tracing::debug!(
                    "endpoint override without credentials: using local dummy credentials"
                );
                loader = loader.credentials_provider(Credentials::new(
                    "test",
                    "test",
                    None,
                    None,
                    "ooni-local-dummy",
                ));
            }
        }
        let shared = loader.load().await;
        // No default CRC32 on every upload: each request's payload is already covered by its
        // SigV4 `x-amz-content-sha256`, which S3 verifies. Uploads that ask for a checksum (the
        // multipart parts) still get it.
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(options.endpoint_url.is_some())
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(&shared),
            dynamodb: aws_sdk_dynamodb::Client::new(&shared),
            ssm: aws_sdk_ssm::Client::new(&shared),
            endpoint_url: options.endpoint_url,
        }
    }

    /// The endpoint override in force, if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// The region the clients were configured with.
    pub fn region(&self) -> Option<&str> {
        self.s3.config().region().map(|r| r.as_ref())
    }
}

/// True when the SDK's default chain has something to find besides instance metadata:
/// static keys, a profile, web identity, container credentials or a credentials file.
fn credentials_configured(is_set: impl Fn(&str) -> bool) -> bool {
    const VARS: [&str; 6] = [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_SHARED_CREDENTIALS_FILE",
    ];
    if VARS.iter().any(|v| is_set(v)) {
        return true;
    }
    std::env::var_os("HOME")
        .map(|home| std::path::Path::new(&home).join(".aws/credentials"))
        .is_some_and(|p| p.is_file())
}

/// An SDK error reduced to what callers act on.
#[derive(Debug, Clone)]
pub(crate) struct SdkFailure {
    /// Retrying later may succeed: network, timeout, throttling, 5xx.
    pub transient: bool,
    /// Service error code (`NoSuchKey`, `ConditionalCheckFailedException`, ...).
    pub code: Option<String>,
    /// Full error chain, for logs and error messages.
    pub message: String,
}

const THROTTLING_CODES: [&str; 8] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
];

pub(crate) fn sdk_failure<E>(err: &SdkError<E, HttpResponse>) -> SdkFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned);
    let transient = match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => {
            status.is_some_and(|s| s >= 500 || s == 429)
                || code
                    .as_deref()
                    .is_some_and(|c| THROTTLING_CODES.contains(&c))
        }
        _ => false,
    };
    SdkFailure {
        transient,
        code,
        message: DisplayErrorContext(err).to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_override_is_read_from_aws_endpoint_url() {
        let opts = AwsOptions::from_lookup(|k| {
            (k == "AWS_ENDPOINT_URL").then(|| "http://127.0.0.1:5000".into())
        });
        assert_eq!(opts.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        let none = AwsOptions::from_lookup(|_| Some(String::new()));
        assert_eq!(none.endpoint_url, None);
    }

    #[test]
    fn static_keys_or_a_profile_count_as_configured_credentials() {
        assert!(credentials_configured(|k| k == "AWS_ACCESS_KEY_ID"));
        assert!(credentials_configured(|k| k == "AWS_PROFILE"));
    }

    #[tokio::test]
    async fn region_comes_from_the_environment_or_defaults_to_us_east_1() {
        let started = std::time::Instant::now();
        let clients = AwsClients::load(AwsOptions::local("http://127.0.0.1:1")).await;
        let from_env = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        assert_eq!(
            clients.region(),
            Some(from_env.as_deref().unwrap_or(DEFAULT_REGION))
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "no metadata lookup"
        );
    }

    #[tokio::test]
    async fn explicit_region_and_endpoint_are_applied_to_the_clients() {
        let clients = AwsClients::load(AwsOptions {
            endpoint_url: Some("http://127.0.0.1:1".into()),
            region: Some("eu-central-1".into()),
        })
        .await;
        assert_eq!(clients.region(), Some("eu-central-1"));
        assert_eq!(clients.endpoint_url(), Some("http://127.0.0.1:1"));
    }
}

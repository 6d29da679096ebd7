//! Secrets: a redacting `Secret` newtype and `load_secret`, which reads a secret from an
//! environment variable `NAME` or, when `NAME_SSM_PARAMETER` is set instead, from SSM
//! Parameter Store (with decryption).

use std::fmt;

use crate::aws::{sdk_failure, AwsClients};

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call only where the value is really needed (signing, auth headers).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret could not be loaded. Never carries the secret value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Neither `NAME` nor `NAME_SSM_PARAMETER` is set (or both are empty).
    #[error("secret {name} is not configured: set {name} or {name}_SSM_PARAMETER")]
    Missing { name: String },
    /// The SSM parameter does not exist.
    #[error("SSM parameter {parameter} (for {name}) does not exist")]
    ParameterNotFound { name: String, parameter: String },
    /// SSM could not be reached or refused the request.
    #[error("reading SSM parameter {parameter} (for {name}) failed: {message}")]
    Ssm {
        name: String,
        parameter: String,
        message: String,
        transient: bool,
    },
}

impl SecretError {
    /// True when retrying later may succeed (network, throttling, 5xx).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Ssm {
                transient: true,
                ..
            }
        )
    }
}

/// Where a secret comes from, as decided from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The value of the environment variable itself.
    Env(Secret),
    /// The name of an SSM parameter to read with decryption.
    SsmParameter(String),
}

/// Decides where secret `name` comes from, reading variables through `lookup`
/// (`std::env::var` in production, a map in tests). A non-empty `NAME` wins over
/// `NAME_SSM_PARAMETER`.
pub fn secret_source(
    name: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<SecretSource, SecretError> {
    let non_empty = |key: &str| lookup(key).filter(|v| !v.is_empty());
    if let Some(value) = non_empty(name) {
        return Ok(SecretSource::Env(Secret(value)));
    }
    if let Some(parameter) = non_empty(&format!("{name}_SSM_PARAMETER")) {
        return Ok(SecretSource::SsmParameter(parameter));
    }
    Err(SecretError::Missing {
        name: name.to_owned(),
    })
}

impl AwsClients {
    /// Loads secret `name` from the process environment: `NAME`, or the SSM parameter
    /// named by `NAME_SSM_PARAMETER` (read with decryption).
    pub async fn load_secret(&self, name: &str) -> Result<Secret, SecretError> {
        self.load_secret_with(name, |key| std::env::var(key).ok())
            .await
    }

    /// Like [`AwsClients::load_secret`] but reads variables through `lookup`.
    pub async fn load_secret_with(
        &self,
        name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Secret, SecretError> {
        match secret_source(name, lookup)? {
            SecretSource::Env(secret) => Ok(secret),
            SecretSource::SsmParameter(parameter) => self.read_ssm_secret(name, &parameter).await,
        }
    }

    async fn read_ssm_secret(&self, name: &str, parameter: &str) -> Result<Secret, SecretError> {
        let result = self
            .ssm
            .get_parameter()
            .name(parameter)
            .with_decryption(true)
            .send()
            .await;
        match result {
            Ok(out) => match out.parameter.and_then(|p| p.value) {
                Some(value) => Ok(Secret(value)),
                None => Err(SecretError::ParameterNotFound {
                    name: name.to_owned(),
                    parameter: parameter.to_owned(),
                }),
            },
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found())
                {
                    return Err(SecretError::ParameterNotFound {
                        name: name.to_owned(),
                        parameter: parameter.to_owned(),
                    });
                }
                let failure = sdk_failure(&err);
                Err(SecretError::Ssm {
                    name: name.to_owned(),
                    parameter: parameter.to_owned(),
                    message: failure.message,
                    transient: failure.transient,
                })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn plain_env_var_wins_over_ssm_parameter() {
        let src = secret_source("JWT", |k| match k {
            "JWT" => Some("abc".into()),
            "JWT_SSM_PARAMETER" => Some("/p".into()),
            _ => None,
        });
        assert_eq!(src.ok(), Some(SecretSource::Env(Secret::new("abc"))));
    }

    #[test]
    fn ssm_parameter_is_used_when_env_var_is_empty_or_unset() {
        let src = secret_source("JWT", |k| match k {
            "JWT" => Some(String::new()),
            "JWT_SSM_PARAMETER" => Some("/ooni/jwt".into()),
            _ => None,
        });
        assert_eq!(
            src.ok(),
            Some(SecretSource::SsmParameter("/ooni/jwt".into()))
        );
    }

    #[test]
    fn missing_secret_names_both_variables() {
        let err = secret_source("JWT", |_| None).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("secret JWT is not configured: set JWT or JWT_SSM_PARAMETER")
        );
    }
}

//! Typed configuration from the environment, validated at cold start, and the redacting
//! [`Secret`] type. Secrets come from the environment locally and from SSM Parameter Store in
//! AWS (the adapters crate resolves `NAME_SSM_PARAMETER` into `NAME` before config is read).

use std::fmt;
use std::str::FromStr;

pub use ooni_adapters::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required setting {0}")]
    Missing(String),
    #[error("setting {name} has an invalid value: {reason}")]
    Invalid { name: String, reason: String },
}

/// A setting lookup: name → value.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Reads settings from a lookup function (the process environment, or a map in tests).
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

impl Env<'static> {
    pub fn process() -> Self {
        Env {
            lookup: Box::new(|k| std::env::var(k).ok().filter(|v| !v.is_empty())),
        }
    }
}

impl<'a> Env<'a> {
    pub fn from_fn(f: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Env {
            lookup: Box::new(f),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_string())
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::Missing(name.into()))
    }

    pub fn secret(&self, name: &str) -> Result<Secret, ConfigError> {
        self.required(name).map(Secret::new)
    }

    pub fn parse<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name: name.into(),
                reason: e.to_string(),
            }),
        }
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Settings every HTTP function shares.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Public base URL of this deployment (for `measurement_url`, `next_url`).
    pub base_url: String,
    /// Proxies in front of API Gateway whose `X-Forwarded-For` entries are trusted (0 = none).
    pub trusted_proxy_hops: usize,
    pub stage: String,
}

impl HttpConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(HttpConfig {
            base_url: env
                .string("OONI_BASE_URL", "http://127.0.0.1:8080")
                .trim_end_matches('/')
                .to_string(),
            trusted_proxy_hops: env.parse("OONI_TRUSTED_PROXY_HOPS", 0usize)?,
            stage: env.string("OONI_STAGE", "local"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn invalid_numbers_are_reported_with_the_setting_name() {
        let m = env(&[("OONI_TRUSTED_PROXY_HOPS", "two")]);
        let e = Env::from_fn(|k| m.get(k).cloned());
        let err = HttpConfig::from_env(&e).unwrap_err().to_string();
        assert!(err.contains("OONI_TRUSTED_PROXY_HOPS"), "{err}");
    }

    #[test]
    fn defaults_apply_when_settings_are_absent() {
        let e = Env::from_fn(|_| None);
        let c = HttpConfig::from_env(&e).unwrap();
        assert_eq!(c.trusted_proxy_hops, 0);
        assert_eq!(c.base_url, "http://127.0.0.1:8080");
    }
}

//! Sending the login e-mail: the [`Mailer`] port, its SES (v2 API) adapter and the message
//! text (upstream `send_login_email`). Locally the SES emulator records the message.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

/// Sends login links.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends the login e-mail to `to`; returns the provider's message id.
    async fn send_login(&self, to: &str, login_url: &str) -> anyhow::Result<String>;
}

pub const SUBJECT: &str = "OONI Account activation email";

pub fn body_text(login_url: &str) -> String {
    format!(
        "\nWelcome to OONI.\nPlease login by following {login_url}\n\
         The link can be used on multiple devices and will expire in 24 hours.\n"
    )
}

pub fn body_html(login_url: &str) -> String {
    format!(
        "\n<html>\n    <head></head>\n    <body>\n        <p>Welcome to OONI</p>\n        <p>\n            \
         <a href=\"{login_url}\">Please login here</a>\n        </p>\n        \
         <p>The link can be used on multiple devices and will expire in 24 hours.</p>\n    </body>\n</html>\n"
    )
}

/// [`Mailer`] over the SES v2 `SendEmail` API.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    source: String,
}

impl SesMailer {
    /// A client for the same endpoint and region as the other AWS clients. With an endpoint
    /// override (the local emulator) it uses dummy credentials and verifies the sender identity,
    /// as the emulator refuses mail from unverified senders.
    pub async fn new(aws: &ooni_adapters::AwsClients, source: String) -> Self {
        let region = aws
            .region()
            .unwrap_or(ooni_adapters::aws::DEFAULT_REGION)
            .to_owned();
        let client = match aws.endpoint_url() {
            Some(endpoint) => {
                let conf = aws_sdk_sesv2::Config::builder()
                    .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
                    .region(aws_sdk_sesv2::config::Region::new(region))
                    .endpoint_url(endpoint)
                    .credentials_provider(aws_sdk_sesv2::config::Credentials::new(
                        "test",
                        "test",
                        None,
                        None,
                        "ooni-local-dummy",
                    ))
                    .build();
                let client = aws_sdk_sesv2::Client::from_conf(conf);
                if let Err(e) = client
                    .create_email_identity()
                    .email_identity(&source)
                    .send()
                    .await
                {
                    tracing::debug!(error = %aws_sdk_sesv2::error::DisplayErrorContext(&e), "sender identity not created (may exist)");
                }
                client
            }
            None => {
                let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new(region))
                    .load()
                    .await;
                aws_sdk_sesv2::Client::new(&shared)
            }
        };
        SesMailer { client, source }
    }
}

fn content(data: String) -> anyhow::Result<Content> {
    Ok(Content::builder().data(data).charset("UTF-8").build()?)
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send_login(&self, to: &str, login_url: &str) -> anyhow::Result<String> {
        let message = Message::builder()
            .subject(content(SUBJECT.to_owned())?)
            .body(
                Body::builder()
                    .text(content(body_text(login_url))?)
                    .html(content(body_html(login_url))?)
                    .build(),
            )
            .build();
        let out = self
            .client
            .send_email()
            .from_email_address(&self.source)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "SES SendEmail failed: {}",
                    aws_sdk_sesv2::error::DisplayErrorContext(&e)
                )
            })?;
        Ok(out.message_id.unwrap_or_default())
    }
}

/// A [`Mailer`] that keeps messages in memory (unit tests).
#[derive(Debug, Default)]
pub struct MemoryMailer {
    pub sent: std::sync::Mutex<Vec<(String, String)>>,
    pub fail: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send_login(&self, to: &str, login_url: &str) -> anyhow::Result<String> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("injected mail failure");
        }
        let mut sent = self.sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        sent.push((to.to_owned(), login_url.to_owned()));
        Ok(format!("msg-{}", sent.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_bodies_carry_the_login_link() {
        assert!(body_text("https://x/login?token=t")
            .contains("Please login by following https://x/login?token=t"));
        assert!(
            body_html("https://x/login?token=t").contains("<a href=\"https://x/login?token=t\">")
        );
    }
}

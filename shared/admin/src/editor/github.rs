//! The GitHub port of the test-list editor and its REST adapter. Instead of upstream's per-user
//! git clone (a Lambda has no durable disk), everything goes through the REST API: read a list
//! at a commit, create a tree and commit on the push repository (a fork), point the user's
//! branch at it, open / inspect / close the pull request on the origin repository.

use async_trait::async_trait;
use ooni_adapters::{AwsClients, Secret};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub {op} failed: {message}")]
    Request { op: &'static str, message: String },
    #[error("GitHub {op} answered HTTP {status}")]
    Status { op: &'static str, status: u16 },
    #[error("GitHub {op} answered an unexpected body: {message}")]
    Decode { op: &'static str, message: String },
    #[error("the GitHub token is not available: {0}")]
    Token(String),
}

/// A commit and its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    pub tree: String,
}

/// An open pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    /// API URL (`…/repos/<o>/<r>/pulls/<n>`), upstream's `pr_id`.
    pub url: String,
    pub number: u64,
}

/// Where a pull request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullState {
    Open,
    Merged,
    /// Closed without merging.
    Closed,
}

#[async_trait]
pub trait GitHub: Send + Sync {
    /// The head commit of `branch` in `repo` (`owner/name`).
    async fn head(&self, repo: &str, branch: &str) -> Result<Commit, GitHubError>;
    /// A file's text at `git_ref`; `None` when it does not exist.
    async fn file(
        &self,
        repo: &str,
        path: &str,
        git_ref: &str,
    ) -> Result<Option<String>, GitHubError>;
    /// A commit on `repo` whose tree is `base`'s with `files` (path, content) replaced.
    async fn commit_files(
        &self,
        repo: &str,
        base: &Commit,
        files: &[(String, String)],
        message: &str,
    ) -> Result<String, GitHubError>;
    /// Points `branch` of `repo` at `sha` (created, or force-moved).
    async fn set_branch(&self, repo: &str, branch: &str, sha: &str) -> Result<(), GitHubError>;
    /// Opens a pull request on `repo` from `head` (`owner:branch`) into `base`, or returns the
    /// open one that already exists for `head`.
    async fn open_pull(
        &self,
        repo: &str,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<Pull, GitHubError>;
    async fn pull_state(&self, pull_url: &str) -> Result<PullState, GitHubError>;
    async fn close_pull(&self, pull_url: &str) -> Result<(), GitHubError>;
    /// Deletes `branch` of `repo`; a missing branch is fine.
    async fn delete_branch(&self, repo: &str, branch: &str) -> Result<(), GitHubError>;
}

/// Reads an environment variable (`std::env::var` in production).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where the token comes from.
#[derive(Clone)]
pub enum TokenSource {
    Fixed(Secret),
    /// `OONI_GITHUB_TOKEN` or the SSM parameter named by `OONI_GITHUB_TOKEN_SSM_PARAMETER`
    /// (read with decryption), as seen through `lookup`; loaded on first use.
    Environment {
        aws: AwsClients,
        lookup: EnvLookup,
    },
}

impl TokenSource {
    /// The production source: the process environment, then SSM.
    pub fn from_env(aws: AwsClients) -> TokenSource {
        TokenSource::Environment {
            aws,
            lookup: Arc::new(|k| std::env::var(k).ok()),
        }
    }
}

/// [`GitHub`] over the REST API at `api_url`.
pub struct RestGitHub {
    http: reqwest::Client,
    api_url: String,
    source: TokenSource,
    token: OnceCell<Secret>,
}

#[derive(Deserialize)]
struct ShaOnly {
    sha: String,
}

#[derive(Deserialize)]
struct CommitBody {
    sha: String,
    commit: CommitInner,
}

#[derive(Deserialize)]
struct CommitInner {
    tree: ShaOnly,
}

#[derive(Deserialize)]
struct PullBody {
    url: String,
    number: u64,
    #[serde(default)]
    state: String,
    #[serde(default)]
    merged: bool,
    #[serde(default)]
    merged_at: Option<String>,
}

impl RestGitHub {
    pub fn new(api_url: &str, source: TokenSource) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .user_agent("ooni-backend-test-lists-editor")
            .build()
            .unwrap_or_default();
        RestGitHub {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            source,
            token: OnceCell::new(),
        }
    }

    async fn token(&self) -> Result<&Secret, GitHubError> {
        self.token
            .get_or_try_init(|| async {
                match &self.source {
                    TokenSource::Fixed(s) => Ok(s.clone()),
                    TokenSource::Environment { aws, lookup } => aws
                        .load_secret_with("OONI_GITHUB_TOKEN", |k| lookup(k))
                        .await
                        .map_err(|e| GitHubError::Token(e.to_string())),
                }
            })
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.api_url, path)
    }

    /// Sends a request; returns the status and body.
    async fn send(
        &self,
        op: &'static str,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        accept: &str,
    ) -> Result<(u16, bytes::Bytes), GitHubError> {
        let token = self.token().await?;
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(token.expose())
            .header("accept", accept)
            .header("x-github-api-version", "2022-11-28");
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| GitHubError::Request {
            op,
            message: e.without_url().to_string(),
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| GitHubError::Request {
            op,
            message: e.without_url().to_string(),
        })?;
        Ok((status, bytes))
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T, GitHubError> {
        let (status, bytes) = self
            .send(op, method, url, body, "application/vnd.github+json")
            .await?;
        if !(200..300).contains(&status) {
            return Err(GitHubError::Status { op, status });
        }
        serde_json::from_slice(&bytes).map_err(|e| GitHubError::Decode {
            op,
            message: e.to_string(),
        })
    }
}

#[async_trait]
impl GitHub for RestGitHub {
    async fn head(&self, repo: &str, branch: &str) -> Result<Commit, GitHubError> {
        let c: CommitBody = self
            .call(
                "get head commit",
                reqwest::Method::GET,
                &self.url(&format!("/repos/{repo}/commits/{branch}")),
                None,
            )
            .await?;
        Ok(Commit {
            sha: c.sha,
            tree: c.commit.tree.sha,
        })
    }

    async fn file(
        &self,
        repo: &str,
        path: &str,
        git_ref: &str,
    ) -> Result<Option<String>, GitHubError> {
        let op = "read file";
        let url = self.url(&format!("/repos/{repo}/contents/{path}?ref={git_ref}"));
        let (status, bytes) = self
            .send(
                op,
                reqwest::Method::GET,
                &url,
                None,
                "application/vnd.github.raw+json",
            )
            .await?;
        match status {
            404 => Ok(None),
            200 => String::from_utf8(bytes.to_vec())
                .map(Some)
                .map_err(|e| GitHubError::Decode {
                    op,
                    message: e.to_string(),
                }),
            s => Err(GitHubError::Status { op, status: s }),
        }
    }

    async fn commit_files(
        &self,
        repo: &str,
        base: &Commit,
        files: &[(String, String)],
        message: &str,
    ) -> Result<String, GitHubError> {
        let tree: Vec<Value> =
            files.iter().map(|(path, content)| json!({"path": path, "mode": "100644", "type": "blob", "content": content})).collect();
        let t: ShaOnly = self
            .call(
                "create tree",
                reqwest::Method::POST,
                &self.url(&format!("/repos/{repo}/git/trees")),
                Some(&json!({"base_tree": base.tree, "tree": tree})),
            )
            .await?;
        let c: ShaOnly = self
            .call(
                "create commit",
                reqwest::Method::POST,
                &self.url(&format!("/repos/{repo}/git/commits")),
                Some(&json!({"message": message, "tree": t.sha, "parents": [base.sha]})),
            )
            .await?;
        Ok(c.sha)
    }

    async fn set_branch(&self, repo: &str, branch: &str, sha: &str) -> Result<(), GitHubError> {
        let op = "update branch";
        let (status, _) = self
            .send(
                op,
                reqwest::Method::PATCH,
                &self.url(&format!("/repos/{repo}/git/refs/heads/{branch}")),
                Some(&json!({"sha": sha, "force": true})),
                "application/vnd.github+json",
            )
            .await?;
        match status {
            200..=299 => Ok(()),
            404 | 422 => {
                let _created: Value = self
                    .call(
                        "create branch",
                        reqwest::Method::POST,
                        &self.url(&format!("/repos/{repo}/git/refs")),
                        Some(&json!({"ref": format!("refs/heads/{branch}"), "sha": sha})),
                    )
                    .await?;
                Ok(())
            }
            s => Err(GitHubError::Status { op, status: s }),
        }
    }

    async fn open_pull(
        &self,
        repo: &str,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<Pull, GitHubError> {
        let op = "open pull request";
        let (status, bytes) = self
            .send(
                op,
                reqwest::Method::POST,
                &self.url(&format!("/repos/{repo}/pulls")),
                Some(&json!({"head": head, "base": base, "title": title, "body": body})),
                "application/vnd.github+json",
            )
            .await?;
        if (200..300).contains(&status) {
            let p: PullBody = serde_json::from_slice(&bytes).map_err(|e| GitHubError::Decode {
                op,
                message: e.to_string(),
            })?;
            return Ok(Pull {
                url: p.url,
                number: p.number,
            });
        }
        if status != 422 {
            return Err(GitHubError::Status { op, status });
        }
        // 422: most likely a pull request for this head exists already (a retried submit).
        let open: Vec<PullBody> = self
            .call(
                "list pull requests",
                reqwest::Method::GET,
                &self.url(&format!("/repos/{repo}/pulls?state=open&head={head}")),
                None,
            )
            .await?;
        open.into_iter()
            .next()
            .map(|p| Pull {
                url: p.url,
                number: p.number,
            })
            .ok_or(GitHubError::Status { op, status })
    }

    async fn pull_state(&self, pull_url: &str) -> Result<PullState, GitHubError> {
        let p: PullBody = self
            .call("get pull request", reqwest::Method::GET, pull_url, None)
            .await?;
        Ok(
            match (p.state.as_str(), p.merged || p.merged_at.is_some()) {
                ("open", _) => PullState::Open,
                (_, true) => PullState::Merged,
                _ => PullState::Closed,
            },
        )
    }

    async fn close_pull(&self, pull_url: &str) -> Result<(), GitHubError> {
        let _closed: Value = self
            .call(
                "close pull request",
                reqwest::Method::PATCH,
                pull_url,
                Some(&json!({"state": "closed"})),
            )
            .await?;
        Ok(())
    }

    async fn delete_branch(&self, repo: &str, branch: &str) -> Result<(), GitHubError> {
        let op = "delete branch";
        let (status, _) = self
            .send(
                op,
                reqwest::Method::DELETE,
                &self.url(&format!("/repos/{repo}/git/refs/heads/{branch}")),
                None,
                "application/vnd.github+json",
            )
            .await?;
        match status {
            200..=299 | 404 | 422 => Ok(()),
            s => Err(GitHubError::Status { op, status: s }),
        }
    }
}

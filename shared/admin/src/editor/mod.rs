//! The test-list editor (upstream `testlists` URL submission), the `UrlSubmission` function:
//!
//! - `GET /api/_/url-submission/test-list/{country_code}` → `{test_list, changes, state, pr_url}`;
//! - `POST /api/v1/url-submission/update-url` `{country_code, comment, old_entry?, new_entry?}`
//!   → `{updated_entry}`;
//! - `POST /api/v1/url-submission/submit` → `{pr_id}`.
//!
//! Each signed-in user has a state machine kept in DynamoDB ([`store`]): CLEAN (no draft) →
//! IN_PROGRESS (edits recorded against the origin commit of the first edit) → PR_OPEN (the
//! edits committed on the user's branch `user-contribution/<account_id>` of the push repository
//! and a pull request opened on the origin) → CLEAN once the pull request is merged or closed
//! by a reviewer. Editing while PR_OPEN closes the pull request and returns to IN_PROGRESS, as
//! upstream. The user's view of a list is the list at the draft's base commit with the draft's
//! edits applied (upstream's per-user worktree), or the current list when CLEAN.
//!
//! Every step is safe to retry or to die in: a submit that dies after opening the pull request
//! finds it again on the rerun (GitHub answers 422 for a second one); an edit that dies after
//! closing the pull request is recognised by the draft's `closing` flag.
//!
//! Settings: `OONI_GITHUB_API_URL` (`https://api.github.com`), `OONI_GITHUB_WEB_URL`
//! (`https://github.com`), `OONI_TESTLISTS_REPO` (`citizenlab/test-lists`),
//! `OONI_TESTLISTS_PUSH_REPO` (`ooni-bot/test-lists`), `OONI_TESTLISTS_BRANCH` (`master`),
//! `OONI_TESTLISTS_MAX_EDITS` (500); token `OONI_GITHUB_TOKEN` or
//! `OONI_GITHUB_TOKEN_SSM_PARAMETER`, loaded on first use.

pub mod github;
pub mod store;
pub mod testlist;

use crate::errors::OoniError;
use crate::State;
use github::{Commit, GitHub, GitHubError, PullState};
use lambda_http::Request;
use ooni_platform::auth::Role;
use ooni_platform::config::{ConfigError, Env};
use ooni_platform::request::{json_body_422, path_param};
use ooni_platform::response::json;
use ooni_platform::{ApiError, Cache, HttpResult};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use store::{Draft, DraftState, EditorStore, Versioned};
use testlist::{
    apply, changes_log, normalize_cc, parse_list, render_list, validate_entry, Edit, Entry, Row,
};

/// Where pull requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditorSettings {
    pub api_url: String,
    pub web_url: String,
    /// `owner/name` of the test-lists repository pull requests target.
    pub origin_repo: String,
    /// `owner/name` of the fork the user branches are pushed to.
    pub push_repo: String,
    pub base_branch: String,
    pub max_edits: usize,
}

impl EditorSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let repo = |name: &str, default: &str| -> Result<String, ConfigError> {
            let v = env.string(name, default);
            let ok = v.split('/').count() == 2
                && v.split('/').all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                });
            if ok {
                Ok(v)
            } else {
                Err(ConfigError::Invalid {
                    name: name.into(),
                    reason: "expected owner/name".into(),
                })
            }
        };
        Ok(EditorSettings {
            api_url: env
                .string("OONI_GITHUB_API_URL", "https://api.github.com")
                .trim_end_matches('/')
                .to_owned(),
            web_url: env
                .string("OONI_GITHUB_WEB_URL", "https://github.com")
                .trim_end_matches('/')
                .to_owned(),
            origin_repo: repo("OONI_TESTLISTS_REPO", "citizenlab/test-lists")?,
            push_repo: repo("OONI_TESTLISTS_PUSH_REPO", "ooni-bot/test-lists")?,
            base_branch: env.string("OONI_TESTLISTS_BRANCH", "master"),
            max_edits: env.parse("OONI_TESTLISTS_MAX_EDITS", 500usize)?,
        })
    }
}

const PR_TITLE: &str = "Contribution from test-lists.ooni.org";

/// The editor's logic over its two ports.
pub struct Editor {
    pub settings: EditorSettings,
    pub github: Arc<dyn GitHub>,
    pub store: Arc<dyn EditorStore>,
}

fn unavailable(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::unavailable(e)
}

fn gh_unavailable(e: GitHubError) -> ApiError {
    ApiError::unavailable(e)
}

/// `POST /api/v1/url-submission/update-url` body.
#[derive(Debug, Clone, Deserialize)]
pub struct UpdateUrlRequest {
    pub country_code: String,
    pub comment: String,
    #[serde(default)]
    pub old_entry: Option<Entry>,
    #[serde(default)]
    pub new_entry: Option<Entry>,
}

impl Editor {
    pub fn branch(account_id: &str) -> String {
        format!("user-contribution/{account_id}")
    }

    fn push_owner(&self) -> &str {
        self.settings.push_repo.split('/').next().unwrap_or("")
    }

    /// A stored pull-request URL must be one of the origin's pull requests on the configured
    /// API (it is fetched with the token).
    fn checked_pr_url<'a>(&self, url: Option<&'a str>) -> Result<&'a str, ApiError> {
        let prefix = format!(
            "{}/repos/{}/pulls/",
            self.settings.api_url, self.settings.origin_repo
        );
        match url {
            Some(u)
                if u.strip_prefix(&prefix)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
            {
                Ok(u)
            }
            _ => Err(OoniError::InvalidPullRequestState.api()),
        }
    }

    /// The browsable URL of a pull request.
    pub fn pr_web_url(&self, api_url: &str) -> String {
        let number = api_url.rsplit('/').next().unwrap_or("");
        format!(
            "{}/{}/pull/{}",
            self.settings.web_url, self.settings.origin_repo, number
        )
    }

    async fn clear(&self, account_id: &str, v: &Versioned) -> Result<(), ApiError> {
        if !self
            .store
            .clear(account_id, v.version)
            .await
            .map_err(unavailable)?
        {
            return Err(OoniError::CannotUpdateList.api());
        }
        if let Err(e) = self
            .github
            .delete_branch(&self.settings.push_repo, &Self::branch(account_id))
            .await
        {
            tracing::warn!(error = %e, "could not delete the user branch");
        }
        Ok(())
    }

    /// Upstream `sync_state`: the draft, after noticing a pull request that was merged or closed.
    pub async fn synced(&self, account_id: &str) -> Result<Option<Versioned>, ApiError> {
        let Some(mut v) = self.store.load(account_id).await.map_err(unavailable)? else {
            return Ok(None);
        };
        if v.draft.state != DraftState::PrOpen {
            return Ok(Some(v));
        }
        let url = self.checked_pr_url(v.draft.pr_url.as_deref())?.to_owned();
        match self.github.pull_state(&url).await.map_err(gh_unavailable)? {
            PullState::Open => Ok(Some(v)),
            PullState::Closed if v.draft.closing => {
                // We closed it ourselves and died before recording IN_PROGRESS.
                v.draft.state = DraftState::InProgress;
                v.draft.pr_url = None;
                v.draft.closing = false;
                let version = self
                    .store
                    .save(account_id, &v.draft, Some(v.version))
                    .await
                    .map_err(unavailable)?;
                v.version = version.ok_or_else(|| OoniError::CannotUpdateList.api())?;
                Ok(Some(v))
            }
            PullState::Merged | PullState::Closed => {
                tracing::info!("pull request resolved: the user's state is CLEAN again");
                self.clear(account_id, &v).await?;
                Ok(None)
            }
        }
    }

    /// A list as the user sees it; `None` when the list does not exist.
    async fn view(&self, draft: Option<&Draft>, cc: &str) -> Result<Option<Vec<Row>>, ApiError> {
        let git_ref = draft.map_or(self.settings.base_branch.as_str(), |d| d.base_sha.as_str());
        let Some(text) = self
            .github
            .file(
                &self.settings.origin_repo,
                &format!("lists/{cc}.csv"),
                git_ref,
            )
            .await
            .map_err(gh_unavailable)?
        else {
            return Ok(None);
        };
        let mut rows = parse_list(&text)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("lists/{cc}.csv: {e}")))?;
        for edit in draft
            .iter()
            .flat_map(|d| d.edits.iter())
            .filter(|e| e.cc == cc)
        {
            apply(&mut rows, edit).map_err(|e| {
                ApiError::internal(anyhow::anyhow!("replaying an edit of {cc}: {e:?}"))
            })?;
        }
        Ok(Some(rows))
    }

    /// `GET /api/_/url-submission/test-list/{country_code}`.
    pub async fn test_list(&self, account_id: &str, country_code: &str) -> Result<Value, ApiError> {
        let cc = normalize_cc(country_code)?;
        let v = self.synced(account_id).await?;
        let draft = v.as_ref().map(|v| &v.draft);
        let state = draft.map_or("CLEAN", |d| d.state.as_str());
        let pr_url = draft
            .filter(|d| d.state == DraftState::PrOpen)
            .and_then(|d| d.pr_url.as_deref())
            .map(|u| self.pr_web_url(u));
        let changes = draft.map(|d| changes_log(&d.edits)).unwrap_or_default();
        let test_list = self
            .view(draft, &cc)
            .await?
            .map(|rows| rows.iter().map(Row::entry).collect::<Vec<_>>());
        Ok(json!({ "test_list": test_list, "changes": changes, "state": state, "pr_url": pr_url }))
    }

    /// `POST /api/v1/url-submission/update-url`.
    pub async fn update(&self, account_id: &str, req: UpdateUrlRequest) -> Result<Value, ApiError> {
        if let Some(n) = &req.new_entry {
            validate_entry(n)?;
        }
        if let Some(o) = &req.old_entry {
            validate_entry(o)?;
        }
        let cc = normalize_cc(&req.country_code)?;
        if req.old_entry == req.new_entry {
            return Err(OoniError::NoProposedChanges.api());
        }
        let (mut draft, mut version) = match self.synced(account_id).await? {
            Some(v) => (v.draft, Some(v.version)),
            None => {
                let head = self
                    .github
                    .head(&self.settings.origin_repo, &self.settings.base_branch)
                    .await
                    .map_err(gh_unavailable)?;
                let draft = Draft {
                    state: DraftState::InProgress,
                    base_sha: head.sha,
                    base_tree: head.tree,
                    edits: Vec::new(),
                    pr_url: None,
                    closing: false,
                };
                (draft, None)
            }
        };
        if draft.state == DraftState::PrOpen {
            // Upstream: editing with an open pull request closes it (the PR acts as a lock).
            let url = self.checked_pr_url(draft.pr_url.as_deref())?.to_owned();
            draft.closing = true;
            version = Some(self.save(account_id, &draft, version).await?);
            self.github.close_pull(&url).await.map_err(|e| {
                tracing::warn!(error = %e, "closing the pull request failed");
                OoniError::CannotClosePr.api()
            })?;
            draft.state = DraftState::InProgress;
            draft.pr_url = None;
            draft.closing = false;
            version = Some(self.save(account_id, &draft, version).await?);
        }
        let mut rows = self
            .view(Some(&draft), &cc)
            .await?
            .ok_or_else(|| OoniError::CountryNotSupported.api())?;
        if let Some(new) = &req.new_entry {
            if req.old_entry.as_ref().is_none_or(|o| o.url != new.url) {
                let mut taken = rows.iter().any(|r| r.url == new.url);
                if !taken && cc != "global" {
                    taken = self
                        .view(Some(&draft), "global")
                        .await?
                        .is_some_and(|g| g.iter().any(|r| r.url == new.url));
                }
                if taken {
                    return Err(OoniError::DuplicateUrl.with_args(Some(json!({ "url": new.url }))));
                }
            }
        }
        let edit = Edit {
            cc,
            old: req.old_entry,
            new: req.new_entry.clone(),
            comment: req.comment,
        };
        apply(&mut rows, &edit)?;
        draft.edits.push(edit);
        if draft.edits.len() > self.settings.max_edits {
            return Err(ApiError::bad_request_detail(format!(
                "too many pending changes (at most {}): submit them first",
                self.settings.max_edits
            )));
        }
        self.save(account_id, &draft, version).await?;
        Ok(json!({ "updated_entry": req.new_entry }))
    }

    async fn save(
        &self,
        account_id: &str,
        draft: &Draft,
        expected: Option<i64>,
    ) -> Result<i64, ApiError> {
        self.store
            .save(account_id, draft, expected)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| OoniError::CannotUpdateList.api())
    }

    /// `POST /api/v1/url-submission/submit`.
    pub async fn submit(&self, account_id: &str) -> Result<Value, ApiError> {
        let Some(v) = self.synced(account_id).await? else {
            return Err(OoniError::NoProposedChanges.api());
        };
        let mut draft = v.draft.clone();
        if draft.state == DraftState::PrOpen {
            let url = self.checked_pr_url(draft.pr_url.as_deref())?;
            return Ok(json!({ "pr_id": url }));
        }
        let mut ccs: Vec<&str> = Vec::new();
        for e in &draft.edits {
            if !ccs.contains(&e.cc.as_str()) {
                ccs.push(&e.cc);
            }
        }
        let mut files = Vec::new();
        for cc in ccs {
            let path = format!("lists/{cc}.csv");
            let original = self
                .github
                .file(&self.settings.origin_repo, &path, &draft.base_sha)
                .await
                .map_err(gh_unavailable)?
                .ok_or_else(|| OoniError::CannotUpdateList.api())?;
            let mut rows = parse_list(&original)
                .map_err(|e| ApiError::internal(anyhow::anyhow!("{path}: {e}")))?;
            for e in draft.edits.iter().filter(|e| e.cc == cc) {
                apply(&mut rows, e)?;
            }
            let rendered = render_list(&rows)
                .map_err(|e| ApiError::internal(anyhow::anyhow!("{path}: {e}")))?;
            if rendered != original {
                files.push((path, rendered));
            }
        }
        if files.is_empty() {
            self.clear(account_id, &v).await?;
            return Err(OoniError::NoProposedChanges.api());
        }
        let comments: Vec<&str> = draft
            .edits
            .iter()
            .map(|e| e.comment.trim())
            .filter(|c| !c.is_empty())
            .collect();
        let message = if comments.is_empty() {
            PR_TITLE.to_owned()
        } else {
            comments.join("\n")
        };
        let body = comments
            .iter()
            .map(|c| format!("- {c}"))
            .collect::<Vec<_>>()
            .join("\n");
        let propose = |e: GitHubError| {
            tracing::warn!(error = %e, "proposing the changes failed");
            OoniError::CannotProposeChanges.api()
        };
        let s = &self.settings;
        let base = Commit {
            sha: draft.base_sha.clone(),
            tree: draft.base_tree.clone(),
        };
        let branch = Self::branch(account_id);
        let commit = self
            .github
            .commit_files(&s.push_repo, &base, &files, &message)
            .await
            .map_err(propose)?;
        self.github
            .set_branch(&s.push_repo, &branch, &commit)
            .await
            .map_err(propose)?;
        let head = format!("{}:{}", self.push_owner(), branch);
        let pull = self
            .github
            .open_pull(&s.origin_repo, &head, &s.base_branch, PR_TITLE, &body)
            .await
            .map_err(propose)?;
        draft.state = DraftState::PrOpen;
        draft.pr_url = Some(pull.url.clone());
        self.save(account_id, &draft, Some(v.version)).await?;
        tracing::info!(
            pr = pull.number,
            files = files.len(),
            "test-list pull request opened"
        );
        Ok(json!({ "pr_id": pull.url }))
    }
}

/// The account id as a branch-name component.
fn account_component(account_id: &str) -> Result<&str, ApiError> {
    if !account_id.is_empty()
        && account_id.len() <= 64
        && account_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        Ok(account_id)
    } else {
        Err(ApiError::bad_request("unsupported account id"))
    }
}

/// The three `UrlSubmission` routes (any signed-in user).
pub async fn url_submission(s: Arc<State>, req: Request) -> HttpResult {
    let claims = s.auth().await?.require(&req, Role::User).await?;
    let account = account_component(&claims.account_id)?;
    let editor = &s.editor;
    let path = req.uri().path();
    let out = if req.method() == http::Method::GET {
        editor
            .test_list(account, &path_param(&req, "country_code")?)
            .await?
    } else if path.ends_with("/update-url") {
        editor.update(account, json_body_422(&req)?).await?
    } else if path.ends_with("/submit") {
        editor.submit(account).await?
    } else {
        return Err(ApiError::not_found("not found"));
    };
    json(&out, Cache::NoCache)
}

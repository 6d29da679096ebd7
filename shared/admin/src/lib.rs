//! Admin routes: the `ooni-admin` crate behind every `Binary::Admin` function.
//!
//! | function | routes | module |
//! | --- | --- | --- |
//! | `UrlPriorities` | `GET /api/_/url-priorities/list`, `POST /api/_/url-priorities/update` (admin) | [`priorities`] |
//! | `DebugPrioritization` | `GET /api/_/debug_prioritization`, `GET /api/_/show_countries_prioritization` | [`priorities`] |
//! | `UrlSubmission` | `GET /api/_/url-submission/test-list/{country_code}`, `POST /api/v1/url-submission/update-url`, `POST /api/v1/url-submission/submit` (signed-in users) | [`editor`] |
//!
//! Sessions are checked with the shared extractor of `ooni_accounts::user_auth` (built on the
//! first request that needs it); error bodies follow the upstream `testlists` service
//! ([`errors`]).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod editor;
pub mod errors;
pub mod priorities;

use async_trait::async_trait;
use editor::github::{RestGitHub, TokenSource};
use editor::store::DynamoEditorStore;
use editor::{Editor, EditorSettings};
use ooni_accounts::prio::{ClickHouseTargets, TargetsSource};
use ooni_platform::auth::UserAuth;
use ooni_platform::config::Env;
use ooni_platform::functions::Table;
use ooni_platform::{fn_handler, ApiError, Context, Handler, Service};
use priorities::{ClickHousePrio, PrioStore};
use std::sync::Arc;
use tokio::sync::OnceCell;

pub const URL_PRIORITIES: &str = "UrlPriorities";
pub const DEBUG_PRIORITIZATION: &str = "DebugPrioritization";
pub const URL_SUBMISSION: &str = "UrlSubmission";

/// What the handlers share, built once per process.
pub struct State {
    ctx: Arc<Context>,
    pub prio: Arc<dyn PrioStore>,
    pub targets: Arc<dyn TargetsSource>,
    pub editor: Editor,
    auth: OnceCell<UserAuth>,
}

impl State {
    /// The state of a context, with the GitHub token from `source` (in production
    /// [`TokenSource::from_env`]: `OONI_GITHUB_TOKEN` or its SSM parameter).
    pub fn new(ctx: Arc<Context>, settings: EditorSettings, source: TokenSource) -> State {
        let editor = Editor {
            github: Arc::new(RestGitHub::new(&settings.api_url, source)),
            store: Arc::new(DynamoEditorStore::new(
                ctx.aws.dynamodb.clone(),
                ctx.table(Table::Editor).table_name(),
            )),
            settings,
        };
        State {
            prio: Arc::new(ClickHousePrio::new(ctx.clickhouse())),
            targets: Arc::new(ClickHouseTargets::new(ctx.clickhouse())),
            editor,
            auth: OnceCell::new(),
            ctx,
        }
    }

    /// The shared session extractor (with the accounts table's expunge policy).
    pub async fn auth(&self) -> Result<&UserAuth, ApiError> {
        self.auth
            .get_or_try_init(|| ooni_accounts::user_auth(&self.ctx))
            .await
            .map_err(ApiError::unavailable)
    }
}

/// Serves the admin functions.
pub struct AdminService {
    ctx: Arc<Context>,
    state: OnceCell<Arc<State>>,
}

impl AdminService {
    pub fn new(ctx: Arc<Context>) -> Self {
        AdminService {
            ctx,
            state: OnceCell::new(),
        }
    }

    /// A service over prepared state (tests: a fake GitHub URL and token).
    pub fn with_state(ctx: Arc<Context>, state: State) -> Self {
        AdminService {
            ctx,
            state: OnceCell::new_with(Some(Arc::new(state))),
        }
    }

    async fn state(&self) -> anyhow::Result<Arc<State>> {
        self.state
            .get_or_try_init(|| async {
                let settings = EditorSettings::from_env(&Env::process())?;
                Ok::<_, anyhow::Error>(Arc::new(State::new(
                    self.ctx.clone(),
                    settings,
                    TokenSource::from_env(self.ctx.aws.clone()),
                )))
            })
            .await
            .cloned()
    }
}

#[async_trait]
impl Service for AdminService {
    fn functions(&self) -> Vec<&'static str> {
        vec![URL_PRIORITIES, DEBUG_PRIORITIZATION, URL_SUBMISSION]
    }

    async fn build(&self, function: &str) -> anyhow::Result<Option<Handler>> {
        let handler = match function {
            URL_PRIORITIES => fn_handler(self.state().await?, priorities::url_priorities),
            DEBUG_PRIORITIZATION => fn_handler(self.state().await?, priorities::debug_routes),
            URL_SUBMISSION => fn_handler(self.state().await?, editor::url_submission),
            _ => return Ok(None),
        };
        Ok(Some(handler))
    }
}

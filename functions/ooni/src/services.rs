//! Every area service, combined: what `ooni dev` serves and `ooni invoke` can call.

use ooni_platform::{Combined, Context};
use std::sync::Arc;

pub fn all(ctx: Arc<Context>) -> Combined {
    Combined(vec![
        Arc::new(ooni_probe::ProbeService::new(ctx.clone())),
        Arc::new(ooni_measurements::ApiService::new(ctx.clone())),
        Arc::new(ooni_accounts::AccountsService::new(ctx.clone())),
        Arc::new(ooni_admin::AdminService::new(ctx.clone())),
        Arc::new(ooni_fastpath::FastpathService::new(ctx.clone())),
        Arc::new(ooni_uploader::UploaderService::new(ctx.clone())),
        Arc::new(ooni_jobs::JobsService::new(ctx)),
        Arc::new(ooni_platform::openapi::OpenApiService),
    ])
}

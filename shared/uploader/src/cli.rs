//! The `ooni upload --hour YYYYMMDDHH` command: uploads one completed hour with a progress
//! bar on stderr when stderr is a terminal (hidden otherwise).

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ooni_platform::config::Env;
use ooni_platform::functions::Bucket;
use ooni_platform::Context;

use crate::config::UploaderConfig;
use crate::keys::Hour;
use crate::service::uploader_from_context;
use crate::upload::{Progress, RunReport};

struct Bar(ProgressBar);

impl Progress for Bar {
    fn measurement(&self, _bytes: u64) {
        self.0.inc(1);
    }

    fn chunk(&self, postcan_key: &str, measurements: u64) {
        self.0
            .set_message(format!("{postcan_key} ({measurements} measurements)"));
    }
}

/// Uploads hour `hour` (`YYYYMMDDHH`, must be complete) of the context's incoming bucket.
/// Settings come from the environment as for the Lambda, without a time budget.
pub async fn upload_hour(ctx: Arc<Context>, hour: &str) -> anyhow::Result<RunReport> {
    let hour = Hour::parse(hour)
        .ok_or_else(|| anyhow::anyhow!("hour must be YYYYMMDDHH, got {hour:?}"))?;
    let config = UploaderConfig {
        time_budget: None,
        ..UploaderConfig::from_env(&Env::process())?
    };
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    if !bar.is_hidden() {
        // Count without keeping the keys.
        let store = ctx.object_store(Bucket::Incoming);
        let prefix = hour.incoming_prefix();
        let (mut total, mut continuation) = (0u64, None);
        loop {
            let page = store.list_page(&prefix, continuation).await?;
            total += page.objects.len() as u64;
            match page.next {
                Some(token) => continuation = Some(token),
                None => break,
            }
        }
        bar.set_length(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} {per_sec} {msg}",
            )?
            .progress_chars("=> "),
        );
    }
    let uploader = uploader_from_context(&ctx, config).with_progress(Arc::new(Bar(bar.clone())));
    let result = uploader.upload_hour(hour).await;
    bar.finish_and_clear();
    Ok(result?)
}

//! The targets behind `websites_list_prioritized` (upstream `common/prio.py`): citizenlab URLs
//! for a country with their recent measurement counts, and the rules that apply to it — the
//! same reads as probe check-in (`ooni_adapters::prio`). The ranking is `ooni_domain::prio`.

use async_trait::async_trait;
use ooni_adapters::prio;
use ooni_domain::prio::{CitizenlabEntry, PrioRule};

/// Where test-list candidates and prioritization rules come from.
#[async_trait]
pub trait TargetsSource: Send + Sync {
    async fn fetch(
        &self,
        probe_cc: &str,
        probe_asn: u32,
    ) -> anyhow::Result<(Vec<CitizenlabEntry>, Vec<PrioRule>)>;
}

/// [`TargetsSource`] over ClickHouse.
#[derive(Clone)]
pub struct ClickHouseTargets {
    client: clickhouse::Client,
}

impl ClickHouseTargets {
    pub fn new(client: clickhouse::Client) -> Self {
        ClickHouseTargets { client }
    }
}

#[async_trait]
impl TargetsSource for ClickHouseTargets {
    async fn fetch(
        &self,
        probe_cc: &str,
        probe_asn: u32,
    ) -> anyhow::Result<(Vec<CitizenlabEntry>, Vec<PrioRule>)> {
        Ok((
            prio::citizenlab_entries(&self.client, probe_cc, probe_asn).await?,
            prio::prio_rules(&self.client, probe_cc).await?,
        ))
    }
}

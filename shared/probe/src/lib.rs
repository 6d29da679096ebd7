//! Probe services (tier 0): the routes real ooniprobe clients call — check-in, report
//! open/submit/close, probe registration and login, test lists, test helpers, collectors, the
//! bouncer, GeoIP lookup, VPN configuration, health and version.
//!
//! [`ProbeService`] builds the handler of each function listed with `Binary::Probe` in the
//! platform's function table (except `ApiSpec`, served elsewhere). Handlers share one
//! [`state::State`] per process: settings, the I/O ports (config and incoming buckets, the
//! submissions queue, ClickHouse, a clock) and cached config-bucket documents
//! (see [`config_docs`] for their keys and formats).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cache;
pub mod config_docs;
pub mod db;
pub mod geoip;
pub mod handlers;
pub mod prio_cache;
pub mod service;
pub mod settings;
pub mod state;

pub use service::ProbeService;
pub use state::{Ports, State};

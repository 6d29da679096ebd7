//! System tests that cross crate boundaries and inject faults into the real local stack:
//! [`fault_proxy`] (a TCP proxy that refuses, delays or drops connections on command),
//! [`clickhouse_process`] (a private ClickHouse that can be stopped and restarted on the same
//! data directory), [`stack`] (the project's context wired through those), [`consumer`] (the
//! SQS event-source stand-in, with duplicate delivery), [`driver`] (emulated probe
//! submissions with their outcomes) and [`scenario`] (the zero-loss scenario and its audit).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod clickhouse_process;
pub mod consumer;
pub mod driver;
pub mod fault_proxy;
pub mod scenario;
pub mod stack;

//! Ports (narrow traits) and adapters for AWS and ClickHouse, plus in-memory fakes.
//!
//! - [`aws`]: the SDK clients, built once from the environment.
//! - [`secret`]: `Secret` and secret loading from env or SSM.
//! - [`object_store`]: the `ObjectStore` port and its S3 adapter (with multipart upload).
//! - [`queue`]: the `MessageQueue` port and its SQS adapter.
//! - [`dynamo`]: `DynamoTable`, a typed helper over (`pk`, `sk`) tables.
//! - [`clickhouse`]: connection settings, `ensure_database`, `health`, `Migrator`.
//! - [`clock`]: the `Clock` port.
//! - [`prio`]: the ClickHouse reads behind URL prioritization.
//! - [`bootstrap`]: resource names and idempotent local provisioning.
//! - [`fakes`]: in-memory fakes with fault injection.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod aws;
pub mod bootstrap;
pub mod clickhouse;
pub mod clock;
pub mod dynamo;
pub mod fakes;
pub mod object_store;
pub mod prio;
pub mod queue;
pub mod secret;

pub use crate::aws::{AwsClients, AwsOptions};
pub use crate::bootstrap::{ensure_resources, ProvisionedQueues, ResourceNames};
pub use crate::clickhouse::{ClickHouseConfig, ClickHouseError, Migrator};
pub use crate::clock::{Clock, FixedClock, SystemClock};
pub use crate::dynamo::{DynamoError, DynamoTable, Item, ItemBuilder};
pub use crate::fakes::{MemoryObjectStore, MemoryQueue};
pub use crate::object_store::{
    ListPage, MultipartUpload, ObjectInfo, ObjectStore, S3ObjectStore, StoreError,
};
pub use crate::queue::{MessageId, MessageQueue, QueueError, ReceivedMessage, SqsQueue};
pub use crate::secret::{Secret, SecretError};

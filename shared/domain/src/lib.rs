//! Pure OONI domain logic shared by the Lambdas: identifiers, body decoding, submission
//! validation, the submission queue envelope, client addresses, URL prioritisation and
//! check-in helpers. No I/O and no async live here; clocks and randomness are parameters.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod checkin;
pub mod client_addr;
pub mod decompress;
pub mod envelope;
pub mod ids;
pub mod normalize;
pub mod prio;
pub mod submission;
pub mod url_host;

pub use decompress::{decode_body, BodyError};
pub use envelope::{incoming_object_key, SubmissionEnvelope};
pub use ids::{generate_report_id, MeasurementUid};
pub use submission::{validate_submission, Accepted, Outcome, Rejected};

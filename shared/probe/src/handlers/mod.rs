//! The HTTP handlers of the probe services, one async function per route, each taking the
//! shared [`crate::state::State`] and the request.

pub mod auth;
pub mod checkin;
pub mod helpers;
pub mod lists;
pub mod misc;
pub mod reports;

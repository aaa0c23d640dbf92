//! Policy decisions as pure functions.
//!
//! This crate does no I/O and reads no clock: callers pass facts and `now` in
//! and get decisions out, so every decision is testable as a table. `server`
//! enforces what it decides.
#![forbid(unsafe_code)]

mod channel;
mod error;
pub mod retention;

pub use channel::Channel;
pub use error::PolicyError;
pub use retention::{Retention, StateTtl};

//! Vigil's engine: an operator graph over Arrow `RecordBatch`es, driven by
//! event time and watermarks.
//!
//! The engine knows nothing of SQL text or of any particular connector: the SQL
//! layer builds a [`graph::JobGraph`], connectors plug in through the
//! [`connector`] traits, and [`runtime::run_job`] executes it on tokio.

pub mod changelog;
pub mod checkpoint;
pub mod connector;
pub mod control;
pub mod error;
pub mod graph;
pub mod join;
pub mod memory;
pub mod message;
pub mod metrics;
pub mod operator;
pub mod operators;
pub mod pattern;
pub mod runtime;
pub mod shuffle;
pub mod state;
pub mod time;
pub mod window;

pub use datafusion::arrow;
pub use error::{EngineError, Result};

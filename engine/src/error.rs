//! Errors raised while building or running a job.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// An error of the engine, with enough context to tell the user what failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// An Arrow kernel failed.
    #[error("arrow error in {context}: {source}")]
    Arrow {
        /// Where it happened.
        context: String,
        /// The cause.
        source: ArrowError,
    },
    /// A DataFusion expression or accumulator failed.
    #[error("expression error in {context}: {source}")]
    DataFusion {
        /// Where it happened.
        context: String,
        /// The cause.
        source: DataFusionError,
    },
    /// A source or sink failed.
    #[error("{connector} '{table}': {message}")]
    Connector {
        /// The connector name, e.g. `filesystem`.
        connector: String,
        /// The table it serves.
        table: String,
        /// What went wrong.
        message: String,
    },
    /// The job graph is not valid.
    #[error("invalid job graph: {0}")]
    Graph(String),
    /// A query failed on its data at run time (e.g. an AFTER MATCH SKIP
    /// target that the match does not map, which the SQL standard makes a
    /// runtime error).
    #[error("{0}")]
    Query(String),
    /// State or checkpoint storage failed, or a checkpoint cannot be restored.
    #[error("state: {0}")]
    State(String),
    /// A task of the job failed in one of its operators, its source or its sink.
    #[error("task '{task}' failed in {at}: {source}")]
    Task {
        /// The task name.
        task: String,
        /// The operator (`Name#node`), source or sink that failed.
        at: String,
        /// What went wrong.
        source: Box<EngineError>,
    },
    /// A task panicked (a bug: please report it).
    #[error("a task panicked: {0}")]
    Panic(String),
}

impl EngineError {
    /// `self`, as the failure of task `task` in `at`.
    pub fn in_task(self, task: &str, at: &str) -> Self {
        EngineError::Task {
            task: task.to_string(),
            at: at.to_string(),
            source: Box::new(self),
        }
    }
}

/// Result with [`EngineError`].
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Attaches a context string to Arrow and DataFusion errors.
pub trait ResultExt<T> {
    /// Wraps the error with `context`.
    fn context(self, context: &str) -> Result<T>;
}

impl<T> ResultExt<T> for std::result::Result<T, ArrowError> {
    fn context(self, context: &str) -> Result<T> {
        self.map_err(|source| EngineError::Arrow {
            context: context.to_string(),
            source,
        })
    }
}

impl<T> ResultExt<T> for std::result::Result<T, DataFusionError> {
    fn context(self, context: &str) -> Result<T> {
        self.map_err(|source| EngineError::DataFusion {
            context: context.to_string(),
            source,
        })
    }
}

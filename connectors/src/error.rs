//! Building connector errors with the table and connector named.

use vigil_engine::connector::TableSpec;
use vigil_engine::EngineError;

/// An error of `connector` serving `spec`'s table.
pub fn connector_error(
    connector: &str,
    spec: &TableSpec,
    message: impl Into<String>,
) -> EngineError {
    EngineError::Connector {
        connector: connector.to_string(),
        table: spec.name.clone(),
        message: message.into(),
    }
}

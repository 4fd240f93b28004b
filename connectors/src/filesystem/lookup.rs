//! A file (or directory of files) of records in any source format as a lookup join's table: read
//! whole when first needed and again whenever a file's modification time (or
//! the set of files) changes. Malformed lines are skipped and counted, as the
//! source does.

use std::path::PathBuf;
use std::time::SystemTime;

use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::record_batch::RecordBatch;
use vigil_engine::connector::{LookupTable, TableSpec};
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::{EngineError, Result};

use super::{data_files, local_path};
use crate::format::decode::RecordDecoder;
use crate::format::{Format, Part};

/// A file table for lookups.
#[derive(Clone)]
pub struct FileLookup {
    table: String,
    path: PathBuf,
    decoder: RecordDecoder,
    schema: datafusion::arrow::datatypes::SchemaRef,
    /// The files and their modification times at the last load.
    loaded: Option<Vec<(PathBuf, Option<SystemTime>)>>,
    malformed: Counter,
}

impl FileLookup {
    /// The table of `spec` (its path must exist).
    pub fn new(spec: &TableSpec, metrics: &Metrics) -> Result<Self> {
        let path = local_path(spec)?;
        if !path.exists() {
            return Err(EngineError::Connector {
                connector: "filesystem".into(),
                table: spec.name.clone(),
                message: format!(
                    "path '{}' does not exist; check the table's 'path' option",
                    path.display()
                ),
            });
        }
        Ok(Self {
            table: spec.name.clone(),
            path,
            decoder: RecordDecoder::for_format(
                Format::from_spec("filesystem", spec, Part::Table, super::SOURCE_FORMATS)?
                    .unwrap_or(Format::Json),
                spec.schema.clone(),
            ),
            schema: spec.schema.clone(),
            loaded: None,
            malformed: metrics.counter(names::MALFORMED_RECORDS, &spec.name),
        })
    }

    fn error(&self, message: String) -> EngineError {
        EngineError::Connector {
            connector: "filesystem".into(),
            table: self.table.clone(),
            message,
        }
    }
}

impl LookupTable for FileLookup {
    fn describe(&self) -> String {
        format!("{} ({})", self.table, self.path.display())
    }

    fn fork(&self) -> Result<Box<dyn LookupTable>> {
        Ok(Box::new(Self {
            loaded: None,
            ..self.clone()
        }))
    }

    fn reload(&mut self) -> Result<Option<RecordBatch>> {
        let files = data_files(&self.path)
            .map_err(|e| self.error(format!("cannot list '{}': {e}", self.path.display())))?;
        let stamps: Vec<(PathBuf, Option<SystemTime>)> = files
            .into_iter()
            .map(|f| {
                let t = std::fs::metadata(&f).and_then(|m| m.modified()).ok();
                (f, t)
            })
            .collect();
        if self.loaded.as_ref() == Some(&stamps) {
            return Ok(None);
        }
        let mut batches = vec![];
        for (f, _) in &stamps {
            let bytes = std::fs::read(f)
                .map_err(|e| self.error(format!("cannot read '{}': {e}", f.display())))?;
            let decoded = self.decoder.decode_chunk(&bytes, 1);
            for bad in &decoded.bad {
                tracing::warn!(table = %self.table, file = %f.display(), line = bad.line, "skipping a malformed record: {}", bad.reason);
            }
            self.malformed.add(decoded.bad.len() as u64);
            batches.extend(decoded.batch);
        }
        let batch = concat_batches(&self.schema, &batches)
            .map_err(|e| self.error(format!("cannot assemble the table: {e}")))?;
        self.loaded = Some(stamps);
        Ok(Some(batch))
    }
}

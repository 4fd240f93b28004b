//! Translation of a table scan: the table's source, its computed columns and
//! watermark, then the scan's projection. A source of a changelog (a CDC
//! format, `upsert-kafka`) carries each row's kind in a trailing
//! `__row_kind` column through all of these; an upsert source is normalised
//! into a full changelog by its primary key right after its watermark, as
//! Flink's `ChangelogNormalize` does.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::{Expr, TableScan};
use datafusion::physical_expr::expressions::Column as PhysColumn;
use datafusion::physical_expr::PhysicalExpr;
use vigil_engine::changelog::normalize::{ChangelogNormalize, NormalizeSpec};
use vigil_engine::changelog::ttl::ttl_setting;
use vigil_engine::changelog::with_row_kind;
use vigil_engine::connector::{SourceChangelog, TableSpec};
use vigil_engine::graph::NodeId;
use vigil_engine::operators::project::Project;
use vigil_engine::operators::watermark::WatermarkAssigner;
use vigil_engine::state::parallelism_setting;

use crate::catalog::{connector_factory, TableEntry};
use crate::error::{Result, SqlError};
use crate::translate::{arrow_schema, Translator};

impl Translator<'_> {
    pub(crate) fn scan(&mut self, scan: &TableScan) -> Result<NodeId> {
        let name = scan.table_name.table().to_string();
        let entry = self
            .tables
            .get(&name)
            .ok_or_else(|| {
                SqlError::at(self.pos, format!("table '{name}' is not a declared table"))
            })?
            .clone();
        let full = entry.schema.clone();
        let all: Vec<usize> = (0..full.fields().len()).collect();
        let projection = scan.projection.clone().unwrap_or(all.clone());
        // A shared scan reads every column, once for all queries.
        // (Not the raw upserts of a temporal join's versioned side: others
        // read the table normalised.)
        let shared = self.shared_scans.filter(|_| !self.raw_upserts);
        if let Some(shared) = shared {
            let known = shared.lock().ok().and_then(|m| m.get(&name).copied());
            let node = match known {
                Some(node) => node,
                None => {
                    let node = self.scan_columns(&name, &entry, all.iter().copied().collect())?;
                    if let Ok(mut m) = shared.lock() {
                        m.insert(name.clone(), node);
                    }
                    node
                }
            };
            return self.project_scan(scan, &entry, node, &all, &projection);
        }
        // Columns needed: the projected ones, the time attribute, and what the
        // computed columns and the watermark read.
        let mut needed: BTreeSet<usize> = projection.iter().copied().collect();
        // A csv record's fields are found by position: it reads them all.
        let positional = ["format", "value.format", "key.format"]
            .iter()
            .any(|k| entry.def.options.get(*k).map(String::as_str) == Some("csv"));
        if positional {
            needed.extend(all.iter().copied());
        }
        // The primary key, by which an upsert source is normalised.
        for k in &entry.def.primary_key {
            if let Ok(i) = full.index_of(k) {
                needed.insert(i);
            }
        }
        if let Some((rt, wm)) = &entry.watermark {
            needed.insert(*rt);
            for c in wm.column_refs() {
                if let Ok(i) = full.index_of(&c.name) {
                    needed.insert(i);
                }
            }
        }
        for i in needed.clone() {
            if let Some(e) = &entry.computed[i] {
                for c in e.column_refs() {
                    if let Ok(j) = full.index_of(&c.name) {
                        needed.insert(j);
                    }
                }
            }
        }
        let needed_idx: Vec<usize> = needed.iter().copied().collect();
        let node = self.scan_columns(&name, &entry, needed)?;
        self.project_scan(scan, &entry, node, &needed_idx, &projection)
    }

    /// The source of table `name` reading the columns `needed` (with what
    /// their computed columns and the watermark read), then its computed
    /// columns and watermark: the node emits `needed` in declaration order.
    fn scan_columns(
        &mut self,
        name: &str,
        entry: &Arc<TableEntry>,
        needed: BTreeSet<usize>,
    ) -> Result<NodeId> {
        let full = entry.schema.clone();
        let name = name.to_string();
        let physical_idx: Vec<usize> = needed
            .iter()
            .copied()
            .filter(|i| entry.computed[*i].is_none())
            .collect();
        let source_schema = Arc::new(Schema::new(
            physical_idx
                .iter()
                .map(|i| {
                    full.field(*i)
                        .as_ref()
                        .clone()
                        .with_metadata(Default::default())
                })
                .collect::<Vec<_>>(),
        ));
        let metadata = entry
            .metadata_columns(false)
            .into_iter()
            .filter(|(col, _)| source_schema.field_with_name(col).is_ok())
            .collect();
        let spec = TableSpec {
            name: name.clone(),
            schema: source_schema.clone(),
            options: entry.def.options.clone(),
            metadata,
            job_options: self.settings.clone(),
            primary_key: entry.def.primary_key.clone(),
            partition_keys: entry.def.partition_keys.clone(),
        };
        let factory = connector_factory(self.registry, &entry.def)?;
        crate::catalog::check_metadata_types(factory.as_ref(), &entry.def, false)?;
        let source = factory
            .create_source(&spec, self.metrics)
            .map_err(|e| SqlError::at(entry.def.options_pos, e.to_string()))?;
        let changelog = factory
            .source_changelog(&spec)
            .map_err(|e| SqlError::at(entry.def.options_pos, e.to_string()))?;
        let updating = changelog != SourceChangelog::Append;
        let emitted = if updating {
            with_row_kind(&source_schema)
        } else {
            source_schema.clone()
        };
        let mut node = self.graph.add_source(&name.to_string(), source, emitted);

        // Compute the needed columns in declaration order.
        let needed_idx: Vec<usize> = needed.iter().copied().collect();
        let expanded = Arc::new(Schema::new(
            needed_idx
                .iter()
                .map(|i| full.field(*i).as_ref().clone())
                .collect::<Vec<_>>(),
        ));
        let expanded = if updating {
            with_row_kind(&expanded)
        } else {
            expanded
        };
        let source_df =
            DFSchema::try_from(source_schema.as_ref().clone()).map_err(|e| self.df_err(e))?;
        let has_computed = needed_idx.iter().any(|i| entry.computed[*i].is_some());
        if has_computed || needed_idx.len() != source_schema.fields().len() {
            let mut exprs = needed_idx
                .iter()
                .map(|i| match &entry.computed[*i] {
                    Some(e) => self.physical(e, &source_df),
                    None => self.physical(
                        &Expr::Column(Column::from_name(full.field(*i).name())),
                        &source_df,
                    ),
                })
                .collect::<Result<Vec<_>>>()?;
            if updating {
                exprs.push(self.row_kind_column(node));
            }
            node = self.graph.add_operator(
                node,
                Box::new(Project::new(exprs, expanded.clone())),
                expanded.clone(),
            );
        }
        if let Some((rt, wm)) = &entry.watermark {
            let expanded_df =
                DFSchema::try_from(expanded.as_ref().clone()).map_err(|e| self.df_err(e))?;
            let wm = self.physical(wm, &expanded_df)?;
            let rt_idx = needed_idx.iter().position(|i| i == rt).unwrap_or(0);
            let op = WatermarkAssigner::new(name.clone(), rt_idx, wm);
            node = self
                .graph
                .add_operator(node, Box::new(op), expanded.clone());
        }
        if changelog == SourceChangelog::Upsert && !self.raw_upserts {
            node = self.normalize(node, entry, &needed_idx)?;
        }
        Ok(node)
    }

    /// Normalises the upsert stream `node` (the table's columns `columns`,
    /// then `__row_kind`) by the table's primary key.
    fn normalize(
        &mut self,
        node: NodeId,
        entry: &Arc<TableEntry>,
        columns: &[usize],
    ) -> Result<NodeId> {
        let schema = self.graph.schema(node);
        let pk = &entry.def.primary_key;
        if pk.is_empty() {
            return Err(SqlError::at(
                entry.def.options_pos,
                format!("the upsert table '{}' needs a primary key", entry.def.name),
            )
            .with_help("declare PRIMARY KEY (col, ...) NOT ENFORCED: its records' key"));
        }
        let mut keys: Vec<Arc<dyn PhysicalExpr>> = vec![];
        let mut key_types = vec![];
        for k in pk {
            let Some(at) = columns
                .iter()
                .position(|i| entry.schema.field(*i).name() == k)
            else {
                return Err(SqlError::at(
                    entry.def.options_pos,
                    format!(
                        "primary key column '{k}' is not a column of '{}'",
                        entry.def.name
                    ),
                ));
            };
            keys.push(Arc::new(PhysColumn::new(k, at)));
            key_types.push(schema.field(at).data_type().clone());
        }
        let spec = NormalizeSpec {
            keys,
            key_types,
            schema: schema.clone(),
            ttl: ttl_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))?,
            describe: format!("key=[{}]", pk.join(", ")),
        };
        let op =
            ChangelogNormalize::new(spec).map_err(|e| SqlError::at(self.pos, e.to_string()))?;
        let parallelism =
            parallelism_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))?;
        let id = self.graph.add_operator(node, Box::new(op), schema);
        self.graph.nodes[id].parallelism = parallelism;
        Ok(id)
    }

    /// A scan's `projection` of the node `node`, which emits the table's
    /// columns `columns`.
    fn project_scan(
        &mut self,
        scan: &TableScan,
        entry: &Arc<TableEntry>,
        mut node: NodeId,
        columns: &[usize],
        projection: &[usize],
    ) -> Result<NodeId> {
        let full = entry.schema.clone();
        let expanded = self.graph.schema(node);
        let needed_idx = columns;
        let out_schema = arrow_schema(&scan.projected_schema);
        if projection != needed_idx {
            let expanded_df =
                DFSchema::try_from(expanded.as_ref().clone()).map_err(|e| self.df_err(e))?;
            let mut exprs = projection
                .iter()
                .map(|i| {
                    self.physical(
                        &Expr::Column(Column::from_name(full.field(*i).name())),
                        &expanded_df,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let out_schema = if self.updating(node) {
                exprs.push(self.row_kind_column(node));
                with_row_kind(&out_schema)
            } else {
                out_schema
            };
            node = self.graph.add_operator(
                node,
                Box::new(Project::new(exprs, out_schema.clone())),
                out_schema,
            );
        }
        Ok(node)
    }
}

//! Tables declared with `CREATE TABLE`: their full schema (physical and
//! computed columns, the time attribute marked), the planned computed-column
//! and watermark expressions, and the DataFusion table provider standing for them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{not_impl_err, DFSchema, Result as DFResult};
use datafusion::datasource::TableType;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::physical_plan::ExecutionPlan;
use vigil_engine::connector::{ConnectorFactory, ConnectorRegistry};
use vigil_engine::window::ROWTIME_METADATA_KEY;

use crate::ddl::{ColumnKind, TableDef};
use crate::error::{Pos, Result, SqlError};

/// A declared table, ready for planning.
#[derive(Debug)]
pub struct TableEntry {
    /// The definition as parsed.
    pub def: TableDef,
    /// Every column in declaration order; the time attribute carries
    /// `vigil.rowtime` metadata.
    pub schema: SchemaRef,
    /// For each column of `schema`: its computed expression over the physical
    /// columns, or None for a physical column.
    pub computed: Vec<Option<Expr>>,
    /// The time attribute's index in `schema` and the watermark expression over `schema`.
    pub watermark: Option<(usize, Expr)>,
}

impl TableEntry {
    /// The metadata columns (by name) with their keys; `writable_only` leaves
    /// out the `VIRTUAL` ones.
    pub fn metadata_columns(&self, writable_only: bool) -> BTreeMap<String, String> {
        self.def
            .columns
            .iter()
            .filter_map(|c| match &c.kind {
                ColumnKind::Physical {
                    metadata: Some(m), ..
                } if !(writable_only && m.is_virtual) => Some((c.name.clone(), m.key.clone())),
                _ => None,
            })
            .collect()
    }

    /// The columns a sink receives: physical and non-virtual metadata columns.
    pub fn sink_schema(&self) -> SchemaRef {
        let virtual_cols: Vec<&str> = self
            .def
            .columns
            .iter()
            .filter_map(|c| match &c.kind {
                ColumnKind::Physical {
                    metadata: Some(m), ..
                } if m.is_virtual => Some(c.name.as_str()),
                _ => None,
            })
            .collect();
        let physical = self.physical_schema();
        let fields: Vec<Field> = physical
            .fields()
            .iter()
            .filter(|f| !virtual_cols.contains(&f.name().as_str()))
            .map(|f| f.as_ref().clone())
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// The physical columns only, in declaration order.
    pub fn physical_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .zip(&self.computed)
            .filter(|(_, c)| c.is_none())
            .map(|(f, _)| f.as_ref().clone())
            .collect();
        Arc::new(Schema::new(fields))
    }
}

/// The factory of the table's `'connector'`, or an error at its WITH clause
/// listing the supported connectors.
pub fn connector_factory<'r>(
    registry: &'r ConnectorRegistry,
    def: &TableDef,
) -> Result<&'r Arc<dyn ConnectorFactory>> {
    let connector = def
        .options
        .get("connector")
        .map(String::as_str)
        .unwrap_or_default();
    registry.get(connector).ok_or_else(|| {
        SqlError::at(
            def.options_pos,
            format!("unknown connector '{connector}' for table '{}'", def.name),
        )
        .with_help(format!(
            "supported connectors: {}",
            registry.names().join(", ")
        ))
    })
}

/// Checks the table's metadata columns against the keys its connector knows.
pub fn check_metadata(factory: &dyn ConnectorFactory, def: &TableDef) -> Result<()> {
    for c in &def.columns {
        let ColumnKind::Physical {
            metadata: Some(m), ..
        } = &c.kind
        else {
            continue;
        };
        let readable = factory.readable_metadata();
        let writable = factory.writable_metadata();
        let known = readable.iter().chain(writable).any(|(k, _)| *k == m.key);
        if !known {
            let keys: Vec<String> = readable
                .iter()
                .chain(writable)
                .map(|(k, t)| format!("'{k}' {t}"))
                .collect();
            let help = if keys.is_empty() {
                format!("the '{}' connector has no metadata", factory.name())
            } else {
                format!(
                    "the '{}' connector supports: {}",
                    factory.name(),
                    keys.join(", ")
                )
            };
            return Err(SqlError::at(
                m.pos,
                format!(
                    "invalid metadata key '{}' in column '{}' of table '{}'",
                    m.key, c.name, def.name
                ),
            )
            .with_help(help));
        }
    }
    Ok(())
}

/// Checks the types of the table's metadata columns as Flink does when the
/// table is read (`writing` false: the connector's type must cast to the
/// column's) or written (`writing`: the column's type must cast to the
/// connector's; VIRTUAL columns are not written). The connectors convert
/// with a cast at run time, so a type checked here is one they can handle.
pub fn check_metadata_types(
    factory: &dyn ConnectorFactory,
    def: &TableDef,
    writing: bool,
) -> Result<()> {
    let declared = if writing {
        factory.writable_metadata()
    } else {
        factory.readable_metadata()
    };
    for c in &def.columns {
        let ColumnKind::Physical {
            data_type,
            metadata: Some(m),
            ..
        } = &c.kind
        else {
            continue;
        };
        if writing && m.is_virtual {
            continue;
        }
        let Some((_, text)) = declared.iter().find(|(k, _)| *k == m.key) else {
            continue;
        };
        let expected = crate::types::parse_type_text(text)?;
        let (from, to) = if writing {
            (data_type, &expected)
        } else {
            (&expected, data_type)
        };
        if crate::types::castable(from, to) {
            continue;
        }
        let direction = if writing { "to" } else { "from" };
        return Err(SqlError::at(
            m.pos,
            format!(
                "invalid data type for metadata column '{}' of table '{}': the column cannot be declared as '{}' because the type must be castable {direction} metadata type '{}'",
                c.name,
                def.name,
                crate::types::flink_name(data_type),
                crate::types::flink_name(&expected),
            ),
        )
        .with_help(format!(
            "declare the column as {} METADATA FROM '{}'",
            crate::types::flink_name(&expected),
            m.key
        )));
    }
    Ok(())
}

/// Plans an expression written in a table definition, mapping error positions
/// back into the script.
fn plan_expr(state: &SessionState, text: &str, schema: &DFSchema, pos: Pos) -> Result<Expr> {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter;
    // Coerced as a query's expressions are (`event_type = 0` on an INT).
    let text = crate::rewrite::rewrite_expr_text(text);
    let planned = state.create_logical_expr(&text, schema).and_then(|e| {
        e.rewrite(&mut TypeCoercionRewriter::new(schema))
            .and_then(|t| t.data.transform(arrow_cast_to_cast))
            .map(|t| t.data)
    });
    planned.map_err(|e| {
        let mut err = SqlError::from_datafusion(e, pos);
        if let Some(p) = err.pos.as_mut() {
            // Positions inside the expression text are relative to it.
            if p.line == 1 && *p != pos {
                p.column += pos.column - 1;
                p.line = pos.line;
            } else if *p != pos {
                *p = pos;
            }
        }
        err
    })
}

/// `arrow_cast(x, 'type')` (which a query's optimizer simplifies, and the
/// rewrites make of Flink's casts) as the plain cast it stands for.
fn arrow_cast_to_cast(
    e: Expr,
) -> datafusion::common::Result<datafusion::common::tree_node::Transformed<Expr>> {
    use datafusion::common::tree_node::Transformed;
    use datafusion::common::ScalarValue;
    if let Expr::ScalarFunction(f) = &e {
        if f.func.name() == "arrow_cast" {
            if let [x, Expr::Literal(ScalarValue::Utf8(Some(t)), _)] = f.args.as_slice() {
                let to: datafusion::arrow::datatypes::DataType = t.parse()?;
                return Ok(Transformed::yes(Expr::Cast(
                    datafusion::logical_expr::Cast::new(Box::new(x.clone()), to),
                )));
            }
        }
    }
    Ok(Transformed::no(e))
}

/// Resolves a table definition: types of computed columns, the time attribute,
/// the watermark expression.
pub fn resolve_table(def: TableDef, state: &SessionState) -> Result<TableEntry> {
    let physical: Vec<Field> = def
        .columns
        .iter()
        .filter_map(|c| match &c.kind {
            ColumnKind::Physical {
                data_type,
                nullable,
                ..
            } => Some(Field::new(&c.name, data_type.clone(), *nullable)),
            ColumnKind::Computed { .. } => None,
        })
        .collect();
    let physical_df = DFSchema::try_from(Schema::new(physical.clone()))
        .map_err(|e| SqlError::from_datafusion(e, def.pos))?;
    let mut fields = vec![];
    let mut computed = vec![];
    for c in &def.columns {
        match &c.kind {
            ColumnKind::Physical {
                data_type,
                nullable,
                ..
            } => {
                fields.push(Field::new(&c.name, data_type.clone(), *nullable));
                computed.push(None);
            }
            ColumnKind::Computed { expr, pos } => {
                let e = plan_expr(state, expr, &physical_df, *pos)?;
                // The field's metadata too: `PROCTIME()` marks a time attribute.
                let (_, f) = e
                    .to_field(&physical_df)
                    .map_err(|err| SqlError::from_datafusion(err, *pos))?;
                fields.push(
                    Field::new(&c.name, f.data_type().clone(), true)
                        .with_metadata(f.metadata().clone()),
                );
                computed.push(Some(e));
            }
        }
    }
    let mut watermark = None;
    if let Some(wm) = &def.watermark {
        let idx = fields
            .iter()
            .position(|f| f.name() == &wm.column)
            .ok_or_else(|| {
                SqlError::at(
                    wm.column_pos,
                    format!(
                        "WATERMARK FOR names '{}', which is not a column of '{}'",
                        wm.column, def.name
                    ),
                )
                .with_len(wm.column.len())
            })?;
        if !matches!(fields[idx].data_type(), DataType::Timestamp(_, _)) {
            return Err(SqlError::at(
                wm.column_pos,
                format!(
                    "the time attribute '{}' must be TIMESTAMP(3) or TIMESTAMP_LTZ(3), not {}",
                    wm.column,
                    fields[idx].data_type()
                ),
            )
            .with_len(wm.column.len()));
        }
        let mut meta: HashMap<String, String> = HashMap::new();
        meta.insert(ROWTIME_METADATA_KEY.to_string(), "true".to_string());
        fields[idx] = fields[idx].clone().with_metadata(meta);
        let full_df = DFSchema::try_from(Schema::new(fields.clone()))
            .map_err(|e| SqlError::from_datafusion(e, def.pos))?;
        let e = plan_expr(state, &wm.expr, &full_df, wm.expr_pos)?;
        let dt = e
            .get_type(&full_df)
            .map_err(|err| SqlError::from_datafusion(err, wm.expr_pos))?;
        if !matches!(dt, DataType::Timestamp(_, _)) {
            return Err(SqlError::at(
                wm.expr_pos,
                format!("the watermark expression must be a timestamp, not {dt}"),
            )
            .with_help("write it like `ts - INTERVAL '5' SECOND`"));
        }
        watermark = Some((idx, e));
    }
    Ok(TableEntry {
        schema: Arc::new(Schema::new(fields)),
        computed,
        watermark,
        def,
    })
}

/// The provider DataFusion plans against; Vigil's translator replaces its scans
/// with a source of the table's connector.
#[derive(Debug)]
pub struct StreamTable {
    /// The table's full schema.
    pub schema: SchemaRef,
}

#[async_trait]
impl TableProvider for StreamTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        not_impl_err!("stream tables are executed by Vigil's engine, not DataFusion's")
    }
}

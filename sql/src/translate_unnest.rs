//! Translation of DataFusion's Unnest plan node (`unnest(array)` in a select
//! list, and Flink's `CROSS JOIN UNNEST` rewritten into one by
//! [`crate::unnest_join`]) into the engine's stateless [`Unnest`].

use datafusion::logical_expr::Unnest as UnnestPlan;
use vigil_engine::graph::NodeId;
use vigil_engine::operators::unnest::Unnest;

use crate::error::{Result, SqlError};
use crate::translate::{arrow_schema, Translator};

impl Translator<'_> {
    /// Adds an Unnest for `u` (arrays, one level deep).
    pub(crate) async fn unnest(&mut self, u: &UnnestPlan) -> Result<NodeId> {
        let at = (self.locate)("UNNEST");
        if !u.struct_type_columns.is_empty() {
            return Err(SqlError::unsupported(at, "unnest of a ROW")
                .with_help("read its fields as r.field instead"));
        }
        if u.list_type_columns.iter().any(|(_, c)| c.depth != 1) {
            return Err(SqlError::unsupported(
                at,
                "unnest of nested arrays more than one level deep",
            ));
        }
        let input = self.plan(&u.input).await?;
        self.require_append_only(input, "UNNEST", "UNNEST")?;
        let lists = u.list_type_columns.iter().map(|(i, _)| *i).collect();
        let schema = arrow_schema(&u.schema);
        let op = Unnest::new(u.dependency_indices.clone(), lists, schema.clone());
        Ok(self.graph.add_operator(input, Box::new(op), schema))
    }
}

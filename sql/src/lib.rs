//! Flink-dialect SQL for Vigil: splits a script into statements, keeps the
//! catalog of tables and views, plans queries with DataFusion and translates
//! the plans into an engine job graph.

pub mod analyzer;
pub mod as_of;
mod cast_row;
pub mod catalog;
pub mod cursor;
pub mod ddl;
mod decimal_cast;
pub mod error;
pub mod function_ddl;
pub mod functions;
pub mod group_window;
mod insert_columns;
mod is_json;
pub mod join;
mod json_syntax;
pub mod legacy_options;
mod map_literal;
pub mod match_recognize;
pub mod planner;
pub mod rewrite;
pub mod script;
pub mod translate;
mod translate_changelog;
mod translate_join;
mod translate_lookup;
mod translate_over;
mod translate_rank;
mod translate_scan;
mod translate_sort;
mod translate_temporal;
mod translate_unnest;
pub mod tvf;
pub mod types;
pub mod unnest_join;
pub mod where_alias;
pub mod window_node;

pub use error::{Pos, SqlError};
pub use planner::{PlannedJob, QueryOutput, ScriptPlanner};

//! Row pattern recognition (MATCH_RECOGNIZE): the pattern language, compiled
//! once per query into an automaton that the matching operator runs per
//! partition.

pub mod ast;

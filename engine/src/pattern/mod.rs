//! Row pattern recognition (MATCH_RECOGNIZE): the pattern language, compiled
//! once per query into an automaton ([`nfa`]) that the matcher runs per
//! partition ([`matcher`]).

pub mod ast;
pub mod matcher;
pub mod nav;
pub mod nfa;
pub mod operator;
mod output;
mod state;
pub mod steps;
mod upkeep;

//! The SQL front end: splitting, parsing, Flink-dialect rewrites, planning.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vigil::fuzzing::check_script(data);
});

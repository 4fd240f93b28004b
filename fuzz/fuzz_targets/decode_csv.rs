//! The `csv` decoder, as a file source and as a Kafka source use it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_connectors::format::fuzzing::{check_lines, check_records};

fuzz_target!(|data: &[u8]| {
    check_lines("csv", data);
    check_records("csv", data);
});

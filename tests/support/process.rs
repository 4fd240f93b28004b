//! Running `vigil run` as a child process in tests: started in the
//! background with a state directory, waited for with a deadline.

#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `vigil run --state-dir STATE SCRIPT` in the background.
pub fn spawn_vigil(script: &str, dir: &std::path::Path) -> std::process::Child {
    std::fs::create_dir_all(dir).expect("job dir");
    let path = dir.join("job.sql");
    std::fs::write(&path, script).expect("write script");
    let log = std::fs::File::create(dir.join("vigil.log")).expect("log");
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["-v", "run", "--state-dir"])
        .arg(dir.join("state"))
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start vigil")
}

/// Waits up to `within` for `done`, failing with `what` and the job's log.
pub fn wait_until(
    within: Duration,
    what: &str,
    dir: &std::path::Path,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} within {within:?}; vigil's log:\n{}",
            std::fs::read_to_string(dir.join("vigil.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

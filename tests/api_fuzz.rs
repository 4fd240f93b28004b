//! The API of `vigil serve` fuzzed from its own OpenAPI document with
//! schemathesis (PyPI): whatever the requests, no answer is a server error
//! (5xx) and the server still answers `/healthz` afterwards.
//!
//! `.ci/run` installs schemathesis and names it in `VIGIL_SCHEMATHESIS`; where
//! it is not set, the test looks for `schemathesis` on the PATH and fails with
//! the install command when there is none.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil::server::{start, ServeConfig};
use vigil::Vigil;

const TOKEN: &str = "fuzz-token";

fn schemathesis() -> PathBuf {
    if let Ok(path) = std::env::var("VIGIL_SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let venv = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cache/vigil-venv/bin/schemathesis"))
        .ok()
        .filter(|p| p.exists());
    venv.unwrap_or_else(|| PathBuf::from("schemathesis"))
}

fn get(url: &str) -> Result<(u16, String), String> {
    let answer = ureq::get(url)
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .timeout(Duration::from_secs(10))
        .call();
    match answer {
        Ok(r) => {
            let status = r.status();
            Ok((status, r.into_string().map_err(|e| e.to_string())?))
        }
        Err(ureq::Error::Status(code, r)) => Ok((code, r.into_string().unwrap_or_default())),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn no_request_built_from_the_openapi_document_gets_a_server_error() {
    let state = std::env::temp_dir().join(format!("vigil-api-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        state_dir: state.clone(),
        token: Some(TOKEN.into()),
        tls: None,
        insecure_no_tls: false,
    };
    let server = rt
        .block_on(start(Vigil::new(), cfg))
        .expect("server starts");
    let base = format!("http://127.0.0.1:{}", server.addr.port());

    // The document names every API route, so the fuzzer reaches them all.
    let (code, doc) = get(&format!("{base}/api/openapi.json")).expect("openapi document");
    assert_eq!(code, 200, "{doc}");
    let doc: serde_json::Value = serde_json::from_str(&doc).expect("document is JSON");
    for path in [
        "/api/jobs",
        "/api/jobs/{name}",
        "/api/jobs/{name}/stop",
        "/api/series",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }

    let tool = schemathesis();
    std::fs::create_dir_all(&state).expect("state dir");
    let log = state.join("schemathesis.log");
    let log_err = std::fs::File::create(state.join("schemathesis.err")).expect("log file");
    let mut child = Command::new(&tool)
        .args(["run", &format!("{base}/api/openapi.json"), "--url", &base])
        .args(["--checks", "not_a_server_error"])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--max-examples", "40", "--request-timeout", "20"])
        .args(["--seed", "1", "--workers", "1"])
        .env("NO_COLOR", "1")
        // Its cache directory goes with the test's files, not into the checkout.
        .current_dir(&state)
        // A file, not a pipe: a full pipe would stall the fuzzer.
        .stdout(Stdio::from(std::fs::File::create(&log).expect("log file")))
        .stderr(Stdio::from(log_err))
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; install it with `python3 -m venv ~/.cache/vigil-venv && \
                 ~/.cache/vigil-venv/bin/pip install 'schemathesis==4.*'` (or run .ci/run)",
                tool.display()
            )
        });
    // Bounded: a fuzz run that hangs fails the test instead of the CI job.
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("schemathesis did not finish within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let report = format!(
        "{}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        std::fs::read_to_string(state.join("schemathesis.err")).unwrap_or_default()
    );
    assert!(status.success(), "schemathesis found failures:\n{report}");
    assert!(
        report.contains("passed") || report.contains("Passed"),
        "no operation was tested:\n{report}"
    );

    let (code, body) = get(&format!("{base}/healthz")).expect("server still answers");
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    drop(server);
    let _ = std::fs::remove_dir_all(&state);
}

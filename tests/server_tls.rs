//! `vigil serve` over HTTPS (`--tls-cert`, `--tls-key`; rustls): the API and
//! `/healthz` answer over TLS to a client that trusts the certificate, a plain
//! HTTP request gets no answer, and an address other than loopback is refused
//! without TLS (the token would cross the network in clear) unless
//! `--insecure-no-tls` is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigil::server::{start, ServeConfig};
use vigil::Vigil;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A self-signed certificate for 127.0.0.1, written as PEM files; its DER.
fn certificate(dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path, cert.der().to_vec())
}

fn config(state: &Path, token: Option<&str>) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        state_dir: state.to_path_buf(),
        token: token.map(str::to_string),
        tls: None,
        insecure_no_tls: false,
    }
}

#[test]
fn the_api_answers_over_https_and_not_in_clear() {
    let dir = temp("https");
    let (cert, key, der) = certificate(&dir);
    let rt = runtime();
    let mut cfg = config(&dir.join("state"), Some("s3cret"));
    cfg.tls = Some((cert, key));
    let server = rt
        .block_on(start(Vigil::new(), cfg))
        .expect("server starts");
    assert!(server.tls);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.into()).expect("root");
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let agent = ureq::AgentBuilder::new()
        .tls_config(Arc::new(client))
        .build();
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let health = agent
        .get(&format!("{base}/healthz"))
        .call()
        .expect("https /healthz")
        .into_string()
        .expect("body");
    assert_eq!(health, "ok\n");
    let jobs = agent
        .get(&format!("{base}/api/jobs"))
        .set("Authorization", "Bearer s3cret")
        .call()
        .expect("https /api/jobs")
        .into_string()
        .expect("body");
    assert_eq!(jobs, "[]");
    // The same port in clear: the TLS server answers no HTTP request.
    let plain = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .get(&format!("http://127.0.0.1:{}/healthz", server.addr.port()))
        .call();
    assert!(plain.is_err(), "a plain HTTP request was answered");
    rt.block_on(server.shutdown()).expect("shutdown");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn off_loopback_needs_tls_unless_insecure_is_asked_for() {
    let dir = temp("exposed");
    let rt = runtime();
    let mut cfg = config(&dir.join("state"), Some("s3cret"));
    cfg.listen = "0.0.0.0:0".parse().expect("addr");
    let refused = rt
        .block_on(start(Vigil::new(), cfg))
        .err()
        .expect("refused");
    assert!(
        refused.contains("needs TLS")
            && refused.contains("--tls-cert")
            && refused.contains("--insecure-no-tls"),
        "{refused}"
    );
    // A certificate that is not one is an error naming the file, before listening.
    let mut cfg = config(&dir.join("state"), Some("s3cret"));
    std::fs::write(dir.join("bad.pem"), "not a certificate").expect("write");
    cfg.tls = Some((dir.join("bad.pem"), dir.join("bad.pem")));
    let bad = rt
        .block_on(start(Vigil::new(), cfg))
        .err()
        .expect("refused");
    assert!(bad.contains("bad.pem"), "{bad}");
    let _ = std::fs::remove_dir_all(dir);
}

//! A local S3 endpoint for tests: moto's server (`moto[server]` from PyPI,
//! installed by .ci/run into ~/.cache/vigil-venv) on a free loopback port,
//! killed when dropped; buckets made and listed over plain HTTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

fn moto_server() -> PathBuf {
    if let Ok(p) = std::env::var("VIGIL_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/vigil-venv/bin/moto_server")
}

impl Moto {
    /// Starts the server and waits until it answers.
    pub fn start() -> Self {
        let bin = moto_server();
        assert!(
            bin.exists(),
            "moto's server is not installed at {}: run .ci/run (it installs moto[server]), or set VIGIL_MOTO_SERVER",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while moto.request("GET", "/", "").is_none() {
            assert!(Instant::now() < deadline, "moto did not answer within 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        moto
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One HTTP/1.1 request; the response's body, or None if it failed.
    fn request(&self, method: &str, path: &str, body: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let (head, body) = out.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 2").then(|| body.to_string())
    }

    /// Creates bucket `name`.
    pub fn create_bucket(&self, name: &str) {
        self.request("PUT", &format!("/{name}"), "")
            .unwrap_or_else(|| panic!("create bucket {name}"));
    }

    /// The keys of bucket `name` under `prefix`.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let body = self
            .request("GET", &format!("/{bucket}?list-type=2&prefix={prefix}"), "")
            .unwrap_or_else(|| panic!("list bucket {bucket}"));
        body.split("<Key>")
            .skip(1)
            .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

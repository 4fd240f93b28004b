//! The CLI's side of `vigil serve`: `submit`, `list`, `status`, `stop`,
//! `results` and `logs` against a server's API. Errors are messages ready to
//! print; [`ClientError::exit_code`] tells a script what happened.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::server::api::{ApiError, Submit};
use crate::server::jobs::JobInfo;
use crate::server::results::Results;

/// Why a command against a server failed.
#[derive(Debug)]
pub enum ClientError {
    /// The server answered with an error (bad script, unknown job, ...).
    Refused(String),
    /// The server could not be reached or answered nonsense.
    Unreachable(String),
}

impl ClientError {
    /// 1 when the server refused, 3 when it could not be reached (2 is
    /// clap's, for usage errors).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Refused(_) => 1,
            ClientError::Unreachable(_) => 3,
        }
    }

    /// The message to print.
    pub fn message(&self) -> &str {
        match self {
            ClientError::Refused(m) | ClientError::Unreachable(m) => m,
        }
    }
}

/// A server's API.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8640`).
    pub fn new(base: &str, token: Option<String>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .build(),
        }
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.request(method, &url);
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let resp = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match resp {
            Ok(r) => r.into_json::<T>().map_err(|e| {
                ClientError::Unreachable(format!("error: the server at {} answered something else than Vigil's API: {e}", self.base))
            }),
            Err(ureq::Error::Status(_, r)) => {
                let msg = match r.into_json::<ApiError>() {
                    Ok(e) => e.error,
                    Err(e) => format!("the server refused without saying why ({e})"),
                };
                let msg = msg.trim_end().to_string();
                Err(ClientError::Refused(if msg.starts_with("error:") {
                    msg
                } else {
                    format!("error: {msg}")
                }))
            }
            Err(e) => Err(ClientError::Unreachable(format!(
                "error: cannot reach a Vigil server at {}: {e}\n  = help: start one with `vigil serve`, or point --server (or VIGIL_SERVER) at it",
                self.base
            ))),
        }
    }

    /// Submits a script as job `name`.
    pub fn submit(&self, name: &str, sql: &str, file: &str) -> Result<JobInfo, ClientError> {
        let body = serde_json::to_value(Submit {
            name: name.to_string(),
            sql: sql.to_string(),
            file: Some(file.to_string()),
        })
        .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        self.call("POST", "/api/jobs", Some(body))
    }

    /// Every job.
    pub fn list(&self) -> Result<Vec<JobInfo>, ClientError> {
        self.call("GET", "/api/jobs", None)
    }

    /// One job.
    pub fn status(&self, name: &str) -> Result<JobInfo, ClientError> {
        self.call("GET", &format!("/api/jobs/{name}"), None)
    }

    /// Stops a job.
    pub fn stop(&self, name: &str) -> Result<JobInfo, ClientError> {
        self.call("POST", &format!("/api/jobs/{name}/stop"), Some(Value::Null))
    }

    /// A job's latest result rows.
    pub fn results(&self, name: &str) -> Result<Results, ClientError> {
        self.call("GET", &format!("/api/jobs/{name}/results"), None)
    }

    /// A job's log.
    pub fn logs(&self, name: &str) -> Result<Vec<String>, ClientError> {
        self.call("GET", &format!("/api/jobs/{name}/logs"), None)
    }
}

/// Jobs as an aligned table.
pub fn jobs_table(jobs: &[JobInfo]) -> String {
    let mut rows = vec![vec![
        "NAME".to_string(),
        "STATE".into(),
        "ROWS IN".into(),
        "ROWS OUT".into(),
        "LATE".into(),
        "CHECKPOINTS".into(),
        "STARTED".into(),
    ]];
    for j in jobs {
        rows.push(vec![
            j.name.clone(),
            format!("{:?}", j.state).to_lowercase(),
            j.rows_read.to_string(),
            j.rows_written.to_string(),
            j.late_rows_dropped.to_string(),
            j.checkpoints.to_string(),
            j.started_at.clone(),
        ]);
    }
    align(&rows)
}

/// Result rows as an aligned table (the latest last).
pub fn results_table(r: &Results) -> String {
    let mut columns = r.columns.clone();
    let changes = r.rows.iter().any(|v| v.get("_op").is_some());
    if changes {
        columns.insert(0, "op".into());
    }
    let mut rows = vec![columns.clone()];
    for v in &r.rows {
        rows.push(
            columns
                .iter()
                .map(|c| match (c.as_str(), v.get(c)) {
                    ("op", None) if changes => "+I".to_string(),
                    (_, None) | (_, Some(Value::Null)) => "NULL".to_string(),
                    (_, Some(Value::String(s))) => s.clone(),
                    (_, Some(x)) => x.to_string(),
                })
                .collect(),
        );
    }
    align(&rows)
}

fn align(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; width];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

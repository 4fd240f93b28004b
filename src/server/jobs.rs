//! The jobs of a `vigil serve` engine: each runs in its own task with its own
//! metrics, results and log, so that one failing never stops another (its
//! error is kept and shown). Submitted scripts are kept under
//! `STATE_DIR/jobs/NAME/` with their state; on start the server resumes the
//! jobs that were running, from their newest checkpoint.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use vigil_engine::control::{stop_channel, StopHandle};
use vigil_engine::metrics::{names, Metrics};

use super::results::{Results, ResultsSink};
use crate::{Error, RunOptions, Vigil};

/// How many log lines a job keeps.
const LOG_LINES: usize = 500;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Running (or resuming).
    Running,
    /// Its bounded sources ended and everything was written.
    Finished,
    /// It failed; see its error.
    Failed,
    /// Stopped on request.
    Stopped,
}

/// What the API shows of a job.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobInfo {
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: JobState,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was (last) started, RFC 3339.
    pub started_at: String,
    /// Rows read by its sources.
    pub rows_read: u64,
    /// Rows written by its sinks (and its queries' result rows).
    pub rows_written: u64,
    /// Late rows dropped.
    pub late_rows_dropped: u64,
    /// Malformed records skipped.
    pub malformed_records: u64,
    /// Checkpoints completed.
    pub checkpoints: u64,
}

/// What is stored of a job.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    state: JobState,
    error: Option<String>,
}

struct Job {
    state: JobState,
    error: Option<String>,
    started_at: String,
    metrics: Metrics,
    stop: Option<StopHandle>,
    results: Arc<Mutex<Results>>,
    log: Arc<Mutex<VecDeque<String>>>,
}

/// Why a request about jobs failed.
#[derive(Debug)]
pub enum JobError {
    /// No such job.
    NotFound(String),
    /// The name is taken by a running job, or is not a valid name.
    Conflict(String),
    /// The script does not plan: the rendered error, line and column.
    Script {
        /// The rendered error (as `vigil run` prints it).
        rendered: String,
        /// What is wrong.
        message: String,
        /// 1-based line, column.
        pos: Option<(usize, usize)>,
    },
    /// The state directory cannot be written.
    Io(String),
}

/// The jobs of a server.
pub struct Jobs {
    vigil: Vigil,
    dir: PathBuf,
    jobs: Mutex<BTreeMap<String, Job>>,
    /// Set when the server shuts down: jobs ending then stay recorded as running.
    closing: AtomicBool,
    /// Job tasks not yet ended.
    live: AtomicUsize,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn push_log(log: &Mutex<VecDeque<String>>, line: impl Into<String>) {
    let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
    l.push_back(format!("{} {}", now(), line.into()));
    if l.len() > LOG_LINES {
        l.pop_front();
    }
}

/// Whether `name` can name a job (and a directory): letters, digits, `-`, `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Jobs {
    /// The jobs kept under `state_dir` (not started yet: see [`Jobs::resume`]).
    pub fn open(vigil: Vigil, state_dir: &Path) -> std::io::Result<Arc<Self>> {
        std::fs::create_dir_all(state_dir.join("jobs"))?;
        Ok(Arc::new(Self {
            vigil,
            dir: state_dir.to_path_buf(),
            jobs: Mutex::new(BTreeMap::new()),
            closing: AtomicBool::new(false),
            live: AtomicUsize::new(0),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn job_dir(&self, name: &str) -> PathBuf {
        self.dir.join("jobs").join(name)
    }

    fn store(&self, name: &str, state: JobState, error: Option<String>) {
        let stored = Stored { state, error };
        let path = self.job_dir(name).join("state.json");
        let tmp = path.with_extension("json.tmp");
        let written = serde_json::to_vec(&stored)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::error!(job = name, "cannot record the job's state: {e}");
        }
    }

    /// Starts again every stored job that was running when the server stopped.
    pub async fn resume(self: &Arc<Self>) {
        let Ok(entries) = std::fs::read_dir(self.dir.join("jobs")) else {
            return;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| valid_name(n))
            .collect();
        names.sort();
        for name in names {
            let dir = self.job_dir(&name);
            let stored: Option<Stored> = std::fs::read(dir.join("state.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let Ok(script) = std::fs::read_to_string(dir.join("script.sql")) else {
                continue;
            };
            match stored {
                Some(Stored {
                    state: JobState::Running,
                    ..
                }) => {
                    tracing::info!(job = %name, "resuming");
                    if let Err(e) = self
                        .start(&name, &script, "resumed after a server restart")
                        .await
                    {
                        tracing::error!(job = %name, "cannot resume: {e:?}");
                    }
                }
                Some(s) => {
                    // Shown, not run.
                    let log = Arc::new(Mutex::new(VecDeque::new()));
                    push_log(&log, format!("{:?} before the server restarted", s.state));
                    self.lock().insert(
                        name,
                        Job {
                            state: s.state,
                            error: s.error,
                            started_at: String::new(),
                            metrics: Metrics::new(),
                            stop: None,
                            results: Arc::new(Mutex::new(Results::default())),
                            log,
                        },
                    );
                }
                None => {}
            }
        }
    }

    /// Submits `script` as job `name` (replacing a job of that name that is
    /// not running); `file` names the script in error messages.
    pub async fn submit(
        self: &Arc<Self>,
        name: &str,
        script: &str,
        file: &str,
    ) -> Result<JobInfo, JobError> {
        if !valid_name(name) {
            return Err(JobError::Conflict(format!(
                "'{name}' is not a job name: use letters, digits, '-' and '_' (at most 64)"
            )));
        }
        if self
            .lock()
            .get(name)
            .is_some_and(|j| j.state == JobState::Running)
        {
            return Err(JobError::Conflict(format!(
                "job '{name}' is running; stop it first (vigil stop {name})"
            )));
        }
        // Plan errors come back before anything is stored or started. (The
        // planner's future is not `Send`: it runs on a thread of its own.)
        let run = self.run_options(name);
        let (vigil, text) = (self.vigil.clone(), script.to_string());
        let planned = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| vigil_sql::SqlError::at(None, format!("cannot plan: {e}")))?;
            rt.block_on(vigil.plan_with(&text, &Metrics::new(), &run))
                .map(|_| ())
        })
        .await
        .map_err(|e| JobError::Io(format!("planning failed: {e}")))?;
        if let Err(e) = planned {
            return Err(JobError::Script {
                rendered: e.render(file, script),
                message: e.message.clone(),
                pos: e.pos.map(|p| (p.line as usize, p.column as usize)),
            });
        }
        let dir = self.job_dir(name);
        // A new script under an old name starts from scratch.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(dir.join("script.sql"), script))
            .map_err(|e| {
                JobError::Io(format!("cannot keep the job in '{}': {e}", dir.display()))
            })?;
        self.start(name, script, "submitted").await?;
        self.info(name)
    }

    fn run_options(&self, name: &str) -> RunOptions {
        RunOptions {
            state_dir: Some(self.dir.join("checkpoints")),
            job_name: Some(name.to_string()),
            ..Default::default()
        }
    }

    async fn start(self: &Arc<Self>, name: &str, script: &str, why: &str) -> Result<(), JobError> {
        let metrics = Metrics::new();
        let results = Arc::new(Mutex::new(Results::default()));
        let log = Arc::new(Mutex::new(VecDeque::new()));
        push_log(&log, why);
        let (handle, signal) = stop_channel();
        self.lock().insert(
            name.to_string(),
            Job {
                state: JobState::Running,
                error: None,
                started_at: now(),
                metrics: metrics.clone(),
                stop: Some(handle),
                results: results.clone(),
                log: log.clone(),
            },
        );
        self.store(name, JobState::Running, None);
        let jobs = self.clone();
        self.live.fetch_add(1, Ordering::SeqCst);
        let (name, script) = (name.to_string(), script.to_string());
        let run = self.run_options(&name);
        tokio::spawn(async move {
            let vigil = jobs.vigil.clone();
            let sink_results = results.clone();
            // On a thread and runtime of its own: a job's operators never
            // compete with the API for its workers, and a panic is this job's
            // failure alone. (The planner's future is not `Send` either.)
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (job_script, job_metrics) = (script.clone(), metrics.clone());
            let thread = std::thread::Builder::new()
                .name(format!("job-{name}"))
                .spawn(move || {
                    let make = move || -> Box<dyn vigil_engine::connector::Sink> {
                        Box::new(ResultsSink::new(sink_results.clone()))
                    };
                    let outcome = tokio::runtime::Builder::new_multi_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| Error::Options(format!("cannot start the job's runtime: {e}")))
                        .and_then(|rt| {
                            rt.block_on(vigil.run_script_into(
                                &job_script,
                                &make,
                                &job_metrics,
                                signal,
                                &run,
                            ))
                        });
                    let _ = tx.send(outcome);
                });
            let outcome = match thread {
                Err(e) => Err(format!("cannot start the job's thread: {e}")),
                Ok(_) => match rx.await {
                    Ok(r) => r.map_err(|e| match e {
                        Error::Sql(e) => e.render(&name, &script),
                        e => format!("error: {e}"),
                    }),
                    Err(_) => Err("the job panicked; see the server's log".to_string()),
                },
            };
            jobs.finished(&name, outcome);
            jobs.live.fetch_sub(1, Ordering::SeqCst);
        });
        Ok(())
    }

    /// Records how a job's run ended.
    fn finished(&self, name: &str, outcome: Result<crate::RunSummary, String>) {
        let mut jobs = self.lock();
        let Some(job) = jobs.get_mut(name) else {
            return;
        };
        let stopped = job.state == JobState::Stopped;
        let (state, error) = match outcome {
            Ok(_) if stopped => (JobState::Stopped, None),
            Ok(_) => (JobState::Finished, None),
            Err(e) => (JobState::Failed, Some(e)),
        };
        push_log(
            &job.log,
            match &error {
                Some(e) => format!("failed: {e}"),
                None => format!("{state:?}").to_lowercase(),
            },
        );
        if job.state == JobState::Running || error.is_some() {
            job.state = state;
            job.error = error.clone();
        }
        job.stop = None;
        let state = job.state;
        drop(jobs);
        if !self.closing.load(Ordering::SeqCst) {
            self.store(name, state, error);
        }
    }

    /// Stops job `name`; it is not resumed when the server restarts.
    pub fn stop(&self, name: &str) -> Result<JobInfo, JobError> {
        {
            let mut jobs = self.lock();
            let job = jobs
                .get_mut(name)
                .ok_or_else(|| JobError::NotFound(format!("no job named '{name}'")))?;
            if let Some(h) = job.stop.take() {
                h.stop();
                job.state = JobState::Stopped;
                push_log(&job.log, "stop requested");
            }
        }
        self.store(name, JobState::Stopped, None);
        vigil_connectors::metrics::series_store().remove_job(name);
        self.info(name)
    }

    /// Stops every job for a server shutdown, leaving running jobs recorded
    /// as running, so that they resume when the server starts again.
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let handles: Vec<StopHandle> = self
            .lock()
            .values_mut()
            .filter_map(|j| j.stop.take())
            .collect();
        for h in &handles {
            h.stop();
        }
        // Give them a moment to flush and commit.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline && self.live.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// What the API shows of job `name`.
    pub fn info(&self, name: &str) -> Result<JobInfo, JobError> {
        let jobs = self.lock();
        let job = jobs
            .get(name)
            .ok_or_else(|| JobError::NotFound(format!("no job named '{name}'")))?;
        Ok(Self::describe(name, job))
    }

    fn describe(name: &str, job: &Job) -> JobInfo {
        let m = &job.metrics;
        JobInfo {
            name: name.to_string(),
            state: job.state,
            error: job.error.clone(),
            started_at: job.started_at.clone(),
            rows_read: m.total(names::SOURCE_ROWS),
            rows_written: m.total(names::SINK_ROWS)
                + job.results.lock().map(|r| r.total).unwrap_or(0),
            late_rows_dropped: m.total(names::LATE_ROWS_DROPPED),
            malformed_records: m.total(names::MALFORMED_RECORDS),
            checkpoints: m.total(names::CHECKPOINTS_COMPLETED),
        }
    }

    /// Every job.
    pub fn list(&self) -> Vec<JobInfo> {
        self.lock()
            .iter()
            .map(|(n, j)| Self::describe(n, j))
            .collect()
    }

    /// The latest rows of job `name`'s queries.
    pub fn results(&self, name: &str) -> Result<Results, JobError> {
        let jobs = self.lock();
        let job = jobs
            .get(name)
            .ok_or_else(|| JobError::NotFound(format!("no job named '{name}'")))?;
        let r = job
            .results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(r)
    }

    /// Job `name`'s log lines, oldest first.
    pub fn logs(&self, name: &str) -> Result<Vec<String>, JobError> {
        let jobs = self.lock();
        let job = jobs
            .get(name)
            .ok_or_else(|| JobError::NotFound(format!("no job named '{name}'")))?;
        let l = job.log.lock().unwrap_or_else(|p| p.into_inner());
        Ok(l.iter().cloned().collect())
    }

    /// Each job's metrics, for `/metrics`.
    pub fn metrics(&self) -> Vec<(String, Metrics)> {
        self.lock()
            .iter()
            .map(|(n, j)| (n.clone(), j.metrics.clone()))
            .collect()
    }
}

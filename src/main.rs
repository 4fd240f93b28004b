//! The `vigil` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vigil::{Error, OutputFormat, Vigil};
use vigil_engine::control::{stop_channel, StopSignal};
use vigil_engine::metrics::Metrics;

// Batches are allocated and freed at a high rate; mimalloc keeps that off the
// system allocator's mmap/munmap path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Vigil runs continuous queries written in Flink SQL over event streams.
#[derive(Parser)]
#[command(name = "vigil", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log verbosity on stderr: -v info, -vv debug (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a SQL script: its INSERT INTO statements write to their sinks and the
    /// rows of bare SELECTs print to stdout. Exits once every bounded source is
    /// exhausted and all output is flushed.
    Run {
        /// The SQL script (Flink dialect; statements end with ';').
        script: PathBuf,
        /// How to print the rows of bare SELECT statements.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Keep the job's state and checkpoints under DIR/<script name>, and
        /// resume from the newest complete checkpoint there (checkpoints every
        /// 10 s unless the script sets 'execution.checkpointing.interval').
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// This process's name among the processes of a job that runs as
        /// several ('execution.mode' = 'distributed'); default: the host name.
        #[arg(long, env = "VIGIL_WORKER_ID", value_name = "NAME")]
        worker_id: Option<String>,
        /// Serve Prometheus metrics on /metrics (and /healthz) at ADDR while
        /// the job runs; of a distributed job, labelled with the worker, and
        /// its membership on /api/members.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Start an embedded Kafka broker, produce live synthetic events into it
    /// (sensors, logins, orders and payments) and run the pipelines of
    /// examples/demo/ over them, printing alerts as they fire. Ctrl-C stops.
    Demo {
        /// Stop by itself after this many seconds.
        #[arg(long)]
        duration: Option<u64>,
    },
    /// Show the processes running a distributed job ('execution.mode' =
    /// 'distributed') as its Kafka group sees them, with their key groups,
    /// and the job's newest complete checkpoint.
    Members {
        /// The job's SQL script.
        script: PathBuf,
        /// The --state-dir the processes were given, if any.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print the operator graph a script plans into, without running it.
    Explain {
        /// The SQL script.
        script: PathBuf,
    },
    /// Run an engine that takes jobs over HTTP (`vigil submit`), with
    /// Prometheus metrics on /metrics and a dashboard on /. Jobs are kept in
    /// the state directory and resume when the server starts again.
    Serve {
        /// Where to listen; an address other than loopback needs --token.
        #[arg(long, default_value = vigil::server::DEFAULT_LISTEN, value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// Where jobs and their checkpoints are kept.
        #[arg(long, value_name = "DIR", default_value = "vigil-state")]
        state_dir: PathBuf,
        /// The bearer token every API call must carry.
        #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
        #[arg(long, value_name = "PEM", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long, value_name = "PEM", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve plain HTTP on an address other than loopback (behind a proxy
        /// that terminates TLS).
        #[arg(long)]
        insecure_no_tls: bool,
    },
    /// Submit a script to a server as a job.
    Submit {
        /// The SQL script.
        script: PathBuf,
        /// The job's name (default: the script's file name without .sql).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List a server's jobs.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show a job's state and counters.
    Status {
        /// The job's name.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Stop a job (it is not resumed when the server restarts).
    Stop {
        /// The job's name.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show the latest result rows of a job's queries (its bare SELECTs).
    Results {
        /// The job's name.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show a job's log.
    Logs {
        /// The job's name.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Generate Nexmark events (persons, auctions, bids; deterministic: each
    /// event is seeded by its id) into DIR/person.jsonl, DIR/auction.jsonl
    /// and DIR/bid.jsonl, with Flink's Nexmark column names; with `--nested`,
    /// into DIR/events.jsonl as the rows of Flink's `datagen` table
    /// (`event_type` and one object for `person`, `auction` or `bid`): what
    /// the `nexmark` connector produces for the same options.
    Nexmark {
        /// Where to write the files.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// One file of nested events instead of three flat ones.
        #[arg(long)]
        nested: bool,
        /// How many events (2% persons, 6% auctions, 92% bids).
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        /// Events per second of event time (how dense their timestamps are).
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
    },
}

/// Which server a client command talks to.
#[derive(clap::Args)]
struct ServerArgs {
    /// The server's URL.
    #[arg(long, env = "VIGIL_SERVER", default_value = "http://127.0.0.1:8640")]
    server: String,
    /// The server's bearer token.
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl ServerArgs {
    fn client(&self) -> vigil::client::Client {
        vigil::client::Client::new(&self.server, self.token.clone())
    }
}

/// A failed command: its message and exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure { code: 1, message }
    }
}

impl From<vigil::client::ClientError> for Failure {
    fn from(e: vigil::client::ClientError) -> Self {
        Failure {
            code: e.exit_code(),
            message: e.message().to_string(),
        }
    }
}

fn job_line(j: &vigil::server::jobs::JobInfo) -> String {
    let mut s = format!(
        "{}: {} (rows in {}, rows out {}, late {}, checkpoints {}, started {})",
        j.name,
        format!("{:?}", j.state).to_lowercase(),
        j.rows_read,
        j.rows_written,
        j.late_rows_dropped,
        j.checkpoints,
        j.started_at
    );
    if let Some(e) = &j.error {
        s.push_str(&format!("\n{e}"));
    }
    s
}

/// The client commands.
fn client_command(command: Command) -> Result<(), Failure> {
    match command {
        Command::Submit {
            script,
            name,
            server,
        } => {
            let text = read_script(&script)?;
            let name = name
                .or_else(|| {
                    script
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .map(str::to_string)
                })
                .ok_or_else(|| "error: name the job with --name".to_string())?;
            let info = server
                .client()
                .submit(&name, &text, &script.display().to_string())?;
            println!("submitted {}", job_line(&info));
        }
        Command::List { server } => {
            print!("{}", vigil::client::jobs_table(&server.client().list()?))
        }
        Command::Status { name, server } => {
            println!("{}", job_line(&server.client().status(&name)?))
        }
        Command::Stop { name, server } => {
            println!("stopped {}", job_line(&server.client().stop(&name)?))
        }
        Command::Results { name, server } => {
            let r = server.client().results(&name)?;
            if r.rows.is_empty() {
                println!("(no result rows yet: the job's bare SELECTs have emitted nothing)");
            } else {
                print!("{}", vigil::client::results_table(&r));
            }
        }
        Command::Logs { name, server } => {
            for line in server.client().logs(&name)? {
                println!("{line}");
            }
        }
        _ => {}
    }
    Ok(())
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn read_script(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("error: cannot read '{}': {e}", path.display()))
}

/// Stops the job on the first Ctrl-C or SIGTERM (sources stop reading, sinks
/// flush, Kafka offsets are committed); a second one exits at once.
fn stop_on_signals() -> StopSignal {
    let (handle, signal) = stop_channel();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            if wait_for_signal().await.is_err() {
                return;
            }
            if first {
                eprintln!(
                    "vigil: stopping: flushing sinks and committing offsets (again to abort)"
                );
                handle.stop();
                first = false;
            } else {
                eprintln!("vigil: aborted");
                std::process::exit(130);
            }
        }
    });
    signal
}

async fn wait_for_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let vigil = Vigil::new();
    match cli.command {
        Command::Serve {
            listen,
            state_dir,
            token,
            tls_cert,
            tls_key,
            insecure_no_tls,
        } => {
            let config = vigil::server::ServeConfig {
                listen,
                state_dir,
                token,
                tls: tls_cert.zip(tls_key),
                insecure_no_tls,
            };
            let server = vigil::server::start(vigil, config).await?;
            eprintln!(
                "vigil: serving on {}://{} (API, /metrics, /healthz, dashboard at /); Ctrl-C stops",
                if server.tls { "https" } else { "http" },
                server.addr
            );
            let _ = wait_for_signal().await;
            eprintln!("vigil: stopping; running jobs resume when the server starts again");
            server.shutdown().await
        }
        Command::Submit { .. }
        | Command::List { .. }
        | Command::Status { .. }
        | Command::Stop { .. }
        | Command::Results { .. }
        | Command::Logs { .. } => unreachable!("client commands run without the runtime"),
        Command::Demo { duration } => {
            let stop = stop_on_signals();
            if let Some(secs) = duration {
                let (handle, timed) = stop_channel();
                let mut outer = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(secs)) => {}
                        _ = outer.stopped() => {}
                    }
                    handle.stop();
                });
                return vigil::demo::run(&vigil, timed).await;
            }
            vigil::demo::run(&vigil, stop).await
        }
        Command::Run {
            script,
            format,
            state_dir,
            worker_id,
            listen,
        } => {
            let text = read_script(&script)?;
            let name = script.display().to_string();
            let stop = stop_on_signals();
            let run = vigil::RunOptions {
                state_dir,
                job_name: vigil::checkpointing::job_name_of(&script),
                worker: worker_id,
                listen,
                ..Default::default()
            };
            match vigil.run_script_with(&text, format, stop, &run).await {
                Ok(summary) => {
                    if summary.malformed_records > 0 {
                        eprintln!("warning: skipped {} malformed record(s); see the log above for their lines", summary.malformed_records);
                    }
                    if summary.late_rows_dropped > 0 {
                        eprintln!(
                            "warning: dropped {} late row(s) whose window had already fired",
                            summary.late_rows_dropped
                        );
                    }
                    if summary.null_rowtime_dropped > 0 {
                        eprintln!(
                            "warning: dropped {} row(s) with a NULL time attribute",
                            summary.null_rowtime_dropped
                        );
                    }
                    Ok(())
                }
                Err(Error::Sql(e)) => Err(e.render(&name, &text)),
                Err(Error::Engine(e)) => Err(format!("error: {e}")),
                Err(Error::Options(e)) => Err(format!("error: {e}")),
            }
        }
        Command::Members { script, state_dir } => {
            let text = read_script(&script)?;
            let name = script.display().to_string();
            let run = vigil::RunOptions {
                state_dir,
                job_name: vigil::checkpointing::job_name_of(&script),
                ..Default::default()
            };
            match vigil::distributed::members(&vigil, &text, &run).await {
                Ok(out) => {
                    print!("{out}");
                    Ok(())
                }
                Err(vigil::Error::Sql(e)) => Err(e.render(&name, &text)),
                Err(e) => Err(format!("{name}: {e}")),
            }
        }
        Command::Explain { script } => {
            let text = read_script(&script)?;
            let name = script.display().to_string();
            let job = vigil
                .plan(&text, &Metrics::new())
                .await
                .map_err(|e| e.render(&name, &text))?;
            print!("{}", job.graph.explain());
            for q in &job.queries {
                println!(
                    "query at line {} prints: {}",
                    q.pos.line, job.graph.nodes[q.node].name
                );
            }
            Ok(())
        }
        Command::Nexmark {
            out,
            nested,
            events,
            rate,
        } => {
            let config = vigil_connectors::nexmark::NexmarkConfig {
                events,
                rate,
                ..Default::default()
            };
            let layout = if nested {
                vigil_connectors::nexmark::Layout::Nested
            } else {
                vigil_connectors::nexmark::Layout::PerKind
            };
            let [p, a, b] =
                vigil_connectors::nexmark::write_files(&config, &out, layout).map_err(|e| {
                    format!(
                        "error: cannot write Nexmark events to '{}': {e}",
                        out.display()
                    )
                })?;
            eprintln!(
                "wrote {p} persons, {a} auctions and {b} bids to {}",
                out.display()
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if matches!(
        cli.command,
        Command::Submit { .. }
            | Command::List { .. }
            | Command::Status { .. }
            | Command::Stop { .. }
            | Command::Results { .. }
            | Command::Logs { .. }
    ) {
        return match client_command(cli.command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => {
                eprintln!("{}", f.message.trim_end());
                ExitCode::from(f.code)
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprint!("{msg}");
            if !msg.ends_with('\n') {
                eprintln!();
            }
            ExitCode::FAILURE
        }
    }
}

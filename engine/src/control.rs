//! Stopping a running job from outside (Ctrl-C, SIGTERM, a server's stop call).
//! Sources watch the signal; on stop they return, and the runtime sends `Stop`
//! instead of `End` so that open windows are not fired as if the input had ended.

use tokio::sync::watch;

/// Requests a stop.
#[derive(Debug, Clone)]
pub struct StopHandle {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

/// Observes stop requests; cheap to clone and usable from any thread.
#[derive(Debug, Clone)]
pub struct StopSignal {
    rx: watch::Receiver<bool>,
}

/// A connected handle and signal.
pub fn stop_channel() -> (StopHandle, StopSignal) {
    let (tx, rx) = watch::channel(false);
    (
        StopHandle {
            tx: std::sync::Arc::new(tx),
        },
        StopSignal { rx },
    )
}

impl StopHandle {
    /// Asks the job to stop; idempotent.
    pub fn stop(&self) {
        self.tx.send_replace(true);
    }
}

impl StopSignal {
    /// A signal that never fires (for jobs run to the end of their input).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        // Keep the sender alive forever so `stopped()` pends instead of returning.
        std::mem::forget(tx);
        Self { rx }
    }

    /// Whether a stop was requested.
    pub fn is_stopped(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes when a stop is requested.
    pub async fn stopped(&mut self) {
        // An error means the handle is gone: no stop can come any more.
        if self.rx.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

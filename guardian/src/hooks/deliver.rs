//! Delivery of one payload to one hook: the command (JSON on stdin, `GUARDIAN_*`
//! variables, its own process group) and the webhook (an HTTP/1 POST on a fresh
//! connection), side by side; each attempt under the hook's timeout, failed ones retried
//! with doubling backoff; everything counted in [`HookStats`].

use std::{
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use http_body_util::Full;
use hyper::{Request, Uri, body::Bytes, header};
use hyper_util::rt::TokioIo;
use tokio::{io::AsyncWriteExt as _, sync::Semaphore};

use super::{
    Payload,
    stats::{FailureKind, HookStats, Outcome, Target},
};
use crate::config::HookConfig;

/// Longest wait between two attempts, however many retries double it.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One configured hook, ready to deliver.
#[derive(Debug)]
pub(super) struct Hook {
    pub(super) config: HookConfig,
    /// The webhook's URL, parsed (validated at load).
    uri: Option<Uri>,
    /// One permit per delivery running (`max_concurrent`).
    pub(super) permits: Arc<Semaphore>,
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot run {program:?}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program:?} exited with {status}")]
    Exit {
        program: String,
        status: std::process::ExitStatus,
    },
    #[error("POST {uri}: {detail}")]
    Http { uri: Uri, detail: String },
    #[error("POST {uri}: answered {status}")]
    Status { uri: Uri, status: hyper::StatusCode },
}

impl AttemptError {
    fn kind(&self) -> FailureKind {
        match self {
            AttemptError::Timeout(_) => FailureKind::Timeout,
            _ => FailureKind::Error,
        }
    }
}

impl Hook {
    pub(super) fn new(config: HookConfig) -> Hook {
        Hook {
            uri: config.url.as_deref().and_then(|url| url.parse().ok()),
            permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            config,
        }
    }

    /// Delivers `payload` to the command and the webhook, side by side.
    pub(super) async fn deliver(&self, payload: &Payload, stats: &HookStats) {
        let json = Bytes::from(payload.to_json());
        let json = &json;
        let command = async {
            if let Some(argv) = &self.config.command {
                self.with_retries(Target::Command, payload, stats, |timeout| {
                    run_command(argv, payload, &self.config.name, json.clone(), timeout)
                })
                .await;
            }
        };
        let webhook = async {
            if let Some(uri) = &self.uri {
                self.with_retries(Target::Webhook, payload, stats, |timeout| async move {
                    tokio::time::timeout(timeout, post(uri, json.clone()))
                        .await
                        .unwrap_or(Err(AttemptError::Timeout(timeout)))
                })
                .await;
            }
        };
        tokio::join!(command, webhook);
    }

    async fn with_retries<F, Fut>(
        &self,
        target: Target,
        payload: &Payload,
        stats: &HookStats,
        attempt: F,
    ) where
        F: Fn(Duration) -> Fut,
        Fut: Future<Output = Result<(), AttemptError>>,
    {
        let name = self.config.name.as_str();
        let event = payload.event;
        let mut wait = self.config.backoff.0;
        for round in 0..=self.config.retries {
            let started = Instant::now();
            let result = attempt(self.config.timeout.0).await;
            stats.observe(name, target, started.elapsed());
            match result {
                Ok(()) => {
                    stats.delivered(name, target, event, Outcome::Ok);
                    tracing::debug!(
                        hook = name,
                        target = target.as_str(),
                        event = event.as_str(),
                        "hook delivered"
                    );
                    return;
                }
                Err(error) => {
                    stats.attempt_failed(name, target, error.kind());
                    tracing::warn!(
                        hook = name,
                        target = target.as_str(),
                        event = event.as_str(),
                        attempt = round + 1,
                        %error,
                        "hook attempt failed"
                    );
                }
            }
            if round < self.config.retries {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2).min(MAX_BACKOFF);
            }
        }
        stats.delivered(name, target, event, Outcome::Failed);
        tracing::error!(
            hook = name,
            target = target.as_str(),
            event = event.as_str(),
            attempts = self.config.retries + 1,
            "hook failed after every attempt"
        );
    }
}

/// Runs the command in its own process group with the JSON on stdin; success is exit
/// status 0. Past `timeout` the whole group is killed (a shell's children too) and the
/// child reaped.
async fn run_command(
    argv: &[String],
    payload: &Payload,
    hook: &str,
    json: Bytes,
    timeout: Duration,
) -> Result<(), AttemptError> {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let spawn_error = |source| AttemptError::Spawn {
        program: program.to_string(),
        source,
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(argv.iter().skip(1))
        .env("GUARDIAN_HOOK", hook)
        .env("GUARDIAN_EVENT", payload.event.as_str())
        .env("GUARDIAN_TIME", &payload.time)
        .env("GUARDIAN_HOST", &payload.host)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(rule) = &payload.rule {
        command.env("GUARDIAN_RULE", rule);
    }
    if let Some(pid) = payload.pid {
        command.env("GUARDIAN_PID", pid.to_string());
    }
    if let Some(comm) = &payload.comm {
        command.env("GUARDIAN_COMM", comm);
    }
    let mut child = command.spawn().map_err(spawn_error)?;
    let group = child.id();
    let mut stdin = child.stdin.take();
    let run = async {
        if let Some(stdin) = &mut stdin {
            // A hook that does not read its stdin is not a failure.
            let _ = stdin.write_all(&json).await;
        }
        drop(stdin.take());
        child.wait().await
    };
    let finished = tokio::time::timeout(timeout, run).await;
    let status = match finished {
        Ok(status) => status.map_err(spawn_error)?,
        Err(_) => {
            // Not yet reaped, so the group id is still this child's own.
            if let Some(group) = group.and_then(|id| i32::try_from(id).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(group),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill().await;
            return Err(AttemptError::Timeout(timeout));
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(AttemptError::Exit {
            program: program.to_string(),
            status,
        })
    }
}

/// One POST on a fresh connection; success is a 2xx answer.
async fn post(uri: &Uri, json: Bytes) -> Result<(), AttemptError> {
    let http = |detail: String| AttemptError::Http {
        uri: uri.clone(),
        detail,
    };
    let host = uri.host().unwrap_or("localhost");
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|error| http(error.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| http(error.to_string()))?;
    // Dropped with this future (on timeout too): the connection goes with it.
    let driver = tokio::spawn(connection);
    let _abort = AbortOnDrop(driver);
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let authority = uri.authority().map_or(host, |authority| authority.as_str());
    let request = Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("guardian/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(json))
        .map_err(|error| http(error.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| http(error.to_string()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(AttemptError::Status {
            uri: uri.clone(),
            status: response.status(),
        })
    }
}

/// Aborts the connection task when the POST ends or is cut off.
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

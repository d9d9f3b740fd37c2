//! The daemon: wires sources, model, policy, trends and outputs together, and handles
//! signals (SIGTERM/SIGINT stop, SIGHUP reloads the config).

mod headroom;
mod memory;
pub mod notify;
mod pipeline;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};

use crate::{
    audit::{AuditError, KillLog},
    config::{Config, ConfigError},
    policy::Executor,
    snapshot::AppState,
    sources::{self, events},
};

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Source(#[from] crate::sources::SourceError),
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    #[error(transparent)]
    Pipeline(#[from] pipeline::PipelineError),
    #[error(transparent)]
    KillLog(#[from] crate::audit::AuditError),
    #[error(
        "{error}; the guardian needs root (to read every process and to kill): run it as \
         root, or point the kill log at a file you can write with --kill-log PATH \
         (or [kill_log] path = ... in the config)"
    )]
    KillLogDenied { error: crate::audit::AuditError },
    #[error("installing the {signal} handler: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Runs until SIGTERM or SIGINT. `config_path` is reread on SIGHUP.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> Result<(), DaemonError> {
    let config = Arc::new(config);
    memory::tune_allocator();
    let kill_log = KillLog::open(&config.kill_log).map_err(|error| match &error {
        AuditError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            DaemonError::KillLogDenied { error }
        }
        _ => DaemonError::KillLog(error),
    })?;
    let executor = Arc::new(Executor::new(
        Arc::new(Mutex::new(kill_log)),
        config.kill_log.on_write_failure,
        config.daemon.dry_run,
        "/proc".into(),
    ));
    let started = sources::start(&config)?;
    let kind = started.status.source;
    let state = Arc::new(AppState::new(config.clone(), started.status.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let http = crate::http::serve(config.daemon.listen, state.clone(), async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    })
    .await?;

    let watched_model = state.clone();
    let names = tokio::spawn(crate::names::run(
        state.names.clone(),
        move || Some(crate::names::container_ids(&watched_model.snapshot().model)),
        crate::names::Lookup::from_config(&config.containers),
        stop_rx.clone(),
    ));
    let (event_tx, event_rx) = mpsc::channel(events::CHANNEL_CAPACITY);
    let mut source = started.source;
    source.spawn_reader(event_tx, state.telemetry.events_lost_user.clone())?;
    let mut pipeline = pipeline::Pipeline::new(state.clone(), source, executor)?;
    // Before READY=1: systemd may send SIGHUP (reload) or SIGTERM as soon as it has it.
    let signals = Signals::install()?;
    pipeline.full_tick().await;
    // The programs are loaded (their BTF freed) and the model is full: trim, then lock
    // what is left, before telling systemd the guardian is ready.
    memory::trim_and_lock(config.daemon.lock_memory);
    tracing::info!(
        source = kind.as_str(),
        processes = state.snapshot().model.process_count(),
        "ready"
    );
    notify::ready(&status_line(&state));
    let watched = state.clone();
    let watchdog = notify::spawn_watchdog(move || watched.snapshot().is_fresh());

    let result = main_loop(&mut pipeline, signals, event_rx, config_path).await;
    notify::stopping();
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    let _ = stop_tx.send(true);
    // Detach the programs before anything else.
    pipeline.detach_source();
    pipeline.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), http).await;
    names.abort();
    tracing::info!("stopped");
    result
}

/// The signals the daemon handles.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, DaemonError> {
        Ok(Signals {
            terminate: install(SignalKind::terminate(), "SIGTERM")?,
            interrupt: install(SignalKind::interrupt(), "SIGINT")?,
            hangup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }
}

async fn main_loop(
    pipeline: &mut pipeline::Pipeline,
    signals: Signals,
    mut events: mpsc::Receiver<crate::sources::KernelEvent>,
    config_path: Option<PathBuf>,
) -> Result<(), DaemonError> {
    let Signals {
        mut terminate,
        mut interrupt,
        mut hangup,
    } = signals;
    let mut tick = tokio::time::interval(pipeline.scan_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(events::BATCH);
    loop {
        tokio::select! {
            _ = terminate.recv() => { tracing::info!("SIGTERM: stopping"); return Ok(()); }
            _ = interrupt.recv() => { tracing::info!("SIGINT: stopping"); return Ok(()); }
            _ = hangup.recv() => {
                notify::reloading();
                reload(pipeline, config_path.as_deref());
                notify::ready(&status_line(pipeline.state()));
                tick = tokio::time::interval(pipeline.scan_interval());
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            _ = tick.tick() => {
                pipeline.note_kernel_drops();
                pipeline.tick().await;
                notify::status(&status_line(pipeline.state()));
            }
            () = pipeline.kill_finished(), if pipeline.kills_running() => {}
            received = events.recv_many(&mut batch, events::BATCH), if !events.is_closed() || !batch.is_empty() => {
                if received > 0 {
                    pipeline.on_kernel_events(&mut batch).await;
                }
            }
        }
    }
}

/// The one-line status systemd shows: source, processes tracked, kills.
fn status_line(state: &AppState) -> String {
    let snapshot = state.snapshot();
    let processes = snapshot.model.process_count();
    let kills = snapshot.ledger.recent().count();
    let source = snapshot.status.source.as_str();
    format!("source={source} processes={processes} recent_kills={kills}")
}

fn install(
    kind: SignalKind,
    name: &'static str,
) -> Result<tokio::signal::unix::Signal, DaemonError> {
    signal(kind).map_err(|source| DaemonError::Signal {
        signal: name,
        source,
    })
}

/// SIGHUP: reread the config; a broken one keeps the old one running.
fn reload(pipeline: &mut pipeline::Pipeline, path: Option<&std::path::Path>) {
    let Some(path) = path else {
        tracing::warn!("SIGHUP: no config file to reload (started without one)");
        return;
    };
    let result = Config::load(path);
    let label = if result.is_ok() { "ok" } else { "error" };
    pipeline
        .state()
        .telemetry
        .reloads_total
        .get_or_create(&vec![("result".to_string(), label.to_string())])
        .inc();
    match result {
        Ok(config) => pipeline.apply_config(config),
        Err(error @ ConfigError::Invalid { .. }) | Err(error @ ConfigError::Read { .. }) => {
            tracing::error!(%error, "config reload rejected; the old config stays in force");
        }
    }
}

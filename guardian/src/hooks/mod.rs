//! Hooks: tell commands and webhooks about kills, OOM kills, leak verdicts, imminence
//! and pressure triggers (`[[hook]]` in the config).
//!
//! Never on the kill's critical path: [`Hooks::emit`] only tries to put the event on a
//! bounded channel (a full channel drops it and counts the drop) and returns. One task
//! takes events off the channel and hands each to every hook that wants it, in a task of
//! its own when the hook has a free slot (`max_concurrent`); a hook with every slot busy
//! (hung, slow) drops the event and counts it, so it never holds up anything else. Each
//! attempt runs under the hook's timeout; failed ones are retried with doubling backoff.
//! Payloads are redacted like the kill log (see [`Payload`]).

mod deliver;
mod payload;
mod stats;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::{HookConfig, HookEvent};

pub use payload::Payload;
pub use stats::{DropKind, FailureKind, HookStats, Outcome, Target};

/// Events waiting for the delivery task; past this the pipeline drops new ones.
pub const QUEUE_CAPACITY: usize = 1024;

/// The sending end, held by the pipeline: cheap to clone, never waits.
#[derive(Clone, Debug)]
pub struct Hooks {
    sender: Option<mpsc::Sender<Payload>>,
    /// Each hook's name and events, to count queue drops against the hooks that missed
    /// the event.
    wanted: Arc<[(String, Vec<HookEvent>)]>,
    stats: Arc<HookStats>,
}

impl Hooks {
    /// Starts the delivery task for `hooks` (call inside the runtime); without any,
    /// [`Hooks::emit`] does nothing. Dropping every clone ends the task once the queue
    /// is empty (deliveries under way finish on their own).
    pub fn start(hooks: Vec<HookConfig>, stats: Arc<HookStats>) -> Hooks {
        let wanted: Arc<[(String, Vec<HookEvent>)]> = hooks
            .iter()
            .map(|hook| (hook.name.clone(), hook.events.clone()))
            .collect();
        if hooks.is_empty() {
            return Hooks {
                sender: None,
                wanted,
                stats,
            };
        }
        for hook in &hooks {
            stats.register(hook);
        }
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let hooks = hooks
            .into_iter()
            .map(deliver::Hook::new)
            .map(Arc::new)
            .collect();
        tokio::spawn(dispatch(receiver, hooks, Arc::clone(&stats), hostname()));
        Hooks {
            sender: Some(sender),
            wanted,
            stats,
        }
    }

    /// Queues `payload` when a hook wants its event; a full queue drops it (counted in
    /// `guardian_hook_dropped_total{reason="queue_full"}`). Never waits.
    pub fn emit(&self, payload: Payload) {
        let Some(sender) = &self.sender else {
            return;
        };
        let event = payload.event;
        if !self
            .wanted
            .iter()
            .any(|(_, events)| events.contains(&event))
        {
            return;
        }
        if let Err(error) = sender.try_send(payload) {
            for (name, _) in self
                .wanted
                .iter()
                .filter(|(_, events)| events.contains(&event))
            {
                self.stats.dropped(name, event, DropKind::QueueFull);
            }
            tracing::warn!(event = event.as_str(), %error, "hook queue full or closed: event dropped");
        }
    }

    /// Whether any hook is configured.
    pub fn enabled(&self) -> bool {
        self.sender.is_some()
    }
}

/// Takes events off the queue and starts one delivery per hook that wants the event
/// and has a free slot; a busy hook drops the event (counted).
async fn dispatch(
    mut receiver: mpsc::Receiver<Payload>,
    hooks: Vec<Arc<deliver::Hook>>,
    stats: Arc<HookStats>,
    host: String,
) {
    while let Some(mut payload) = receiver.recv().await {
        payload.host.clone_from(&host);
        let payload = Arc::new(payload);
        for hook in hooks
            .iter()
            .filter(|hook| hook.config.events.contains(&payload.event))
        {
            let Ok(permit) = Arc::clone(&hook.permits).try_acquire_owned() else {
                stats.dropped(&hook.config.name, payload.event, DropKind::Busy);
                tracing::warn!(
                    hook = %hook.config.name,
                    event = payload.event.as_str(),
                    max_concurrent = hook.config.max_concurrent,
                    "hook busy: event dropped"
                );
                continue;
            };
            let (hook, payload, stats) =
                (Arc::clone(hook), Arc::clone(&payload), Arc::clone(&stats));
            tokio::spawn(async move {
                hook.deliver(&payload, &stats).await;
                drop(permit);
            });
        }
    }
}

/// The host's name for payloads (empty when unreadable).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}

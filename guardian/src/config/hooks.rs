//! `[[hook]]`: a command and/or a webhook told about kills, OOM kills, leak verdicts,
//! imminence and pressure triggers, off the kill path.

use std::time::Duration;

use serde::Deserialize;

use super::Interval;

/// What a hook is told about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HookEvent {
    /// A kill decision played out (dry-run decisions too).
    Kill,
    /// The kernel's OOM killer killed a process.
    Oom,
    /// A trend verdict became "leak".
    Leak,
    /// A series will reach its limit within the imminence horizon.
    Imminent,
    /// A pressure rule's trigger started to fire.
    Pressure,
}

impl HookEvent {
    /// Every event, in the order metrics list them.
    pub const ALL: [HookEvent; 5] = [
        HookEvent::Kill,
        HookEvent::Oom,
        HookEvent::Leak,
        HookEvent::Imminent,
        HookEvent::Pressure,
    ];

    /// The event's name in payloads, `GUARDIAN_EVENT` and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::Kill => "kill",
            HookEvent::Oom => "oom",
            HookEvent::Leak => "leak",
            HookEvent::Imminent => "imminent",
            HookEvent::Pressure => "pressure",
        }
    }
}

/// Most retries a hook may ask for: with doubling backoff more would outlive the event.
pub const MAX_HOOK_RETRIES: u32 = 10;

/// `[[hook]]`: one command and/or one webhook, told about the `events` listed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Names the hook in logs and metrics (`hook` label); unique among hooks.
    pub name: String,
    /// What the hook is told about.
    pub events: Vec<HookEvent>,
    /// Absolute program path and arguments, run once per event with the event's JSON
    /// on stdin and `GUARDIAN_*` variables (no shell).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// `http://host:port/path` the event's JSON is POSTed to.
    #[serde(default)]
    pub url: Option<String>,
    /// Longest one attempt may take (the command is killed, the connection dropped).
    #[serde(default = "default_timeout")]
    pub timeout: Interval,
    /// Attempts after a failed first one.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Wait before the first retry; it doubles for each further one.
    #[serde(default = "default_backoff")]
    pub backoff: Interval,
    /// Most events this hook delivers at once; an event arriving while all are busy is
    /// dropped and counted, never queued behind a hung hook.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
}

fn default_timeout() -> Interval {
    Interval(Duration::from_secs(5))
}

fn default_retries() -> u32 {
    2
}

fn default_backoff() -> Interval {
    Interval(Duration::from_secs(1))
}

fn default_max_concurrent() -> usize {
    4
}

impl HookConfig {
    /// Why this hook cannot be used, in words naming the hook and the field.
    pub fn problem(&self) -> Option<String> {
        let name = &self.name;
        if name.trim().is_empty() {
            return Some("hook.name must not be empty".into());
        }
        if self.events.is_empty() {
            return Some(format!(
                "hook {name:?}: events must list at least one of kill, oom, leak, imminent, pressure"
            ));
        }
        if self.command.is_none() && self.url.is_none() {
            return Some(format!("hook {name:?} needs a command, a url or both"));
        }
        if let Some(command) = &self.command {
            match command.first() {
                None => return Some(format!("hook {name:?}: command must name a program")),
                Some(program) if !program.starts_with('/') => {
                    return Some(format!(
                        "hook {name:?}: command program {program:?} must be an absolute path \
                         (no shell and no PATH lookup)"
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(url) = &self.url {
            match url.parse::<hyper::Uri>() {
                Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => {}
                Ok(_) => {
                    return Some(format!(
                        "hook {name:?}: url {url:?} must be an http:// URL with a host \
                         (https is not supported: point it at a local relay)"
                    ));
                }
                Err(error) => return Some(format!("hook {name:?}: url {url:?}: {error}")),
            }
        }
        if self.timeout.0.is_zero() {
            return Some(format!("hook {name:?}: timeout must be above zero"));
        }
        if self.retries > MAX_HOOK_RETRIES {
            return Some(format!(
                "hook {name:?}: retries must be at most {MAX_HOOK_RETRIES}"
            ));
        }
        if self.max_concurrent == 0 {
            return Some(format!("hook {name:?}: max_concurrent must be at least 1"));
        }
        None
    }
}

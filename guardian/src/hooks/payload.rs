//! The JSON a hook receives: the event, when, on which host, which rule and process it
//! is about, and the event's own record. Every record put here already serializes
//! redacted (a kill report's `cmdline` and `reason` are redacted like the kill log's;
//! OOM events, trend changes and pressure statuses carry no command line); free text a
//! record adds later is redacted again on the way out.

use serde::Serialize;
use serde_json::Value;

use crate::{
    config::HookEvent,
    model::OomEvent,
    policy::{KillReport, PressureStatus},
    trends::{ImminenceChange, Subject, VerdictChange},
};

/// One event for the hooks.
#[derive(Clone, Debug, Serialize)]
pub struct Payload {
    pub event: HookEvent,
    /// RFC 3339 UTC time the event was queued.
    pub time: String,
    /// The host's name (filled in by the delivery task, off the pipeline).
    pub host: String,
    /// The rule behind a kill or pressure event.
    pub rule: Option<String>,
    /// The process the event is about, when there is one.
    pub pid: Option<i32>,
    pub comm: Option<String>,
    /// The event's record: the kill report, the OOM event, the trend change, the
    /// pressure rule's status.
    pub data: Value,
}

impl Payload {
    /// A kill decision as it played out (dry runs too).
    pub fn kill(report: &KillReport) -> Payload {
        let intent = &report.intent;
        Payload::new(
            HookEvent::Kill,
            Some(intent.rule.clone()),
            Some(intent.pid),
            Some(intent.comm.clone()),
            report,
        )
    }

    /// An OOM kill a source reported.
    pub fn oom(event: &OomEvent) -> Payload {
        Payload::new(HookEvent::Oom, None, event.pid, event.comm.clone(), event)
    }

    /// A trend verdict that became "leak".
    pub fn leak(change: &VerdictChange) -> Payload {
        let (pid, comm) = process_of(&change.subject);
        Payload::new(HookEvent::Leak, None, pid, comm, change)
    }

    /// A series now due to reach its limit within the imminence horizon.
    pub fn imminent(change: &ImminenceChange) -> Payload {
        let (pid, comm) = process_of(&change.subject);
        Payload::new(HookEvent::Imminent, None, pid, comm, change)
    }

    /// A pressure rule whose trigger started to fire.
    pub fn pressure(status: &PressureStatus) -> Payload {
        Payload::new(
            HookEvent::Pressure,
            Some(status.rule.clone()),
            None,
            None,
            status,
        )
    }

    fn new(
        event: HookEvent,
        rule: Option<String>,
        pid: Option<i32>,
        comm: Option<String>,
        data: &impl Serialize,
    ) -> Payload {
        let mut data = serde_json::to_value(data).unwrap_or(Value::Null);
        redact_free_text(&mut data);
        Payload {
            event,
            time: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            host: String::new(),
            rule,
            pid,
            comm,
            data,
        }
    }

    /// The JSON text sent.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The pid and comm of a process subject (none for a cgroup).
fn process_of(subject: &Subject) -> (Option<i32>, Option<String>) {
    match subject {
        Subject::Process { pid, comm, .. } => (Some(*pid), Some(comm.clone())),
        Subject::Cgroup { .. } => (None, None),
    }
}

/// Redacts the free-text fields (`reason`, `detail`) at any depth like the kill log
/// does: they may quote a command line. Redaction of redacted text leaves it alone.
fn redact_free_text(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                match field {
                    Value::String(text) if matches!(key.as_str(), "reason" | "detail") => {
                        *text = crate::redact::redact_text(text);
                    }
                    other => redact_free_text(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_free_text),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_is_redacted_at_any_depth() {
        let payload = Payload::new(
            HookEvent::Kill,
            Some("r".into()),
            Some(7),
            Some("node".into()),
            &serde_json::json!({
                "reason": "matched node app --password=hunter2",
                "nested": [{"detail": "curl -u admin:s3cr3tpass https://x"}],
                "comm": "node"
            }),
        );
        let text = String::from_utf8(payload.to_json()).expect("utf-8");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("s3cr3tpass"), "{text}");
        assert!(text.contains("\"event\":\"kill\""), "{text}");
        assert!(text.contains("\"pid\":7"), "{text}");
    }
}

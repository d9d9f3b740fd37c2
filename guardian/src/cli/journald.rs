//! journald through `tracing-journald`, with a MESSAGE that reads like the text log.
//!
//! Every event becomes one journal entry whose fields are stored one by one
//! (`GUARDIAN_PID=42`, `GUARDIAN_RULE=...`), so `journalctl GUARDIAN_RULE=host-over-300mb`
//! or `-o json` read them as data, and whose MESSAGE is `message key=value ...`, so plain
//! `journalctl -u guardian` shows the pid, rule, error with line and column. The crate
//! writes the native protocol (a memfd for entries too large for one datagram); this
//! layer only rewrites the message before handing the event on.

use std::fmt;

use tracing::{
    Event, Subscriber,
    field::{Field, Value},
    span,
};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

/// Prefix of the guardian's own fields (`GUARDIAN_PID`), so they never collide with
/// journald's.
const FIELD_PREFIX: &str = "GUARDIAN";

/// tracing-journald's layer, fed events whose message carries their fields.
pub struct JournaldLayer {
    inner: tracing_journald::Layer,
}

impl JournaldLayer {
    /// A layer for journald's socket (`/run/systemd/journal/socket`); fails when nothing
    /// listens there.
    pub fn connect() -> std::io::Result<JournaldLayer> {
        Ok(JournaldLayer {
            inner: tracing_journald::layer()?
                .with_field_prefix(Some(FIELD_PREFIX.to_string()))
                .with_syslog_identifier("guardian".to_string()),
        })
    }
}

impl<S> Layer<S> for JournaldLayer
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        self.inner.on_record(id, values, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let fields = Fields::of(event);
        let meta = event.metadata();
        let Some(message_field) = meta.fields().field("message") else {
            // No message to make readable: the crate's entry as it is.
            self.inner.on_event(event, ctx);
            return;
        };
        let message = fields.readable_message();
        // Every field of the callsite, in its order: the message rewritten, the others
        // as recorded (their own journal fields keep the plain value).
        let values: Vec<Option<&dyn Value>> = meta
            .fields()
            .iter()
            .map(|field| {
                if field == message_field {
                    Some(&message as &dyn Value)
                } else {
                    fields
                        .others
                        .iter()
                        .find(|(name, _, _)| *name == field.name())
                        .map(|(_, value, _)| value as &dyn Value)
                }
            })
            .collect();
        let values = meta.fields().value_set_all(&values);
        self.inner.on_event(&Event::new(meta, &values), ctx);
    }
}

/// The message and the other fields of one event, in the order they were recorded.
#[derive(Default)]
pub(super) struct Fields {
    message: String,
    /// (name, value as stored in its own field, value as shown in MESSAGE)
    others: Vec<(&'static str, String, String)>,
}

impl Fields {
    pub(super) fn of(event: &Event<'_>) -> Fields {
        let mut fields = Fields::default();
        event.record(&mut fields);
        fields
    }

    /// `message key=value ...`, strings quoted as the text log shows them.
    pub(super) fn readable_message(&self) -> String {
        use fmt::Write as _;
        let mut message = self.message.clone();
        for (name, _, shown) in &self.others {
            let _ = write!(message, " {name}={shown}");
        }
        message
    }
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.others
                .push((field.name(), value.to_string(), format!("{value:?}")));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.others.push((field.name(), text.clone(), text));
        }
    }
}

#[cfg(test)]
mod tests;

//! The readable MESSAGE and the stored values, from real `tracing` events. The datagrams
//! the crate sends are checked end to end in `tests/integration/journald.rs`.

use std::sync::{Arc, Mutex};

use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

/// What the journald layer would make of each event: (MESSAGE, [(field, stored value)]).
type Seen = Vec<(String, Vec<(&'static str, String)>)>;

struct Capture(Arc<Mutex<Seen>>);

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let fields = Fields::of(event);
        let stored = fields
            .others
            .iter()
            .map(|(name, value, _)| (*name, value.clone()))
            .collect();
        if let Ok(mut seen) = self.0.lock() {
            seen.push((fields.readable_message(), stored));
        }
    }
}

fn capture(log: impl FnOnce()) -> Seen {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Capture(seen.clone()));
    tracing::subscriber::with_default(subscriber, log);
    seen.lock().expect("capture lock").clone()
}

#[test]
fn the_message_reads_like_the_text_log_and_fields_keep_plain_values() {
    let seen = capture(|| {
        tracing::error!(
            target: "guardian::kill",
            pid = 42,
            rule = "host-over-300mb",
            error = %"/etc/guardian/guardian.toml:3:1: unknown field `x`",
            "config reload rejected"
        );
    });
    assert_eq!(seen.len(), 1);
    let (message, stored) = &seen[0];
    assert_eq!(
        message,
        "config reload rejected pid=42 rule=\"host-over-300mb\" \
         error=/etc/guardian/guardian.toml:3:1: unknown field `x`"
    );
    assert_eq!(
        stored,
        &[
            ("pid", "42".to_string()),
            ("rule", "host-over-300mb".to_string()),
            (
                "error",
                "/etc/guardian/guardian.toml:3:1: unknown field `x`".to_string()
            ),
        ]
    );
}

#[test]
fn multi_line_values_survive() {
    let seen = capture(|| tracing::info!(detail = "a\nb", "two lines"));
    assert_eq!(seen[0].1, [("detail", "a\nb".to_string())]);
}

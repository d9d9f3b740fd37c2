use std::{collections::HashMap, os::unix::net::UnixDatagram, time::Duration};

use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

/// Parses a native-protocol datagram (length-encoded and `KEY=value` fields).
fn decode(mut data: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    while !data.is_empty() {
        let newline = data.iter().position(|&b| b == b'\n').expect("field end");
        let head = std::str::from_utf8(&data[..newline]).expect("UTF-8 name");
        if let Some((name, value)) = head.split_once('=') {
            fields.insert(name.to_string(), value.to_string());
            data = &data[newline + 1..];
            continue;
        }
        let rest = &data[newline + 1..];
        let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")) as usize;
        let value = std::str::from_utf8(&rest[8..8 + len]).expect("UTF-8 value");
        assert_eq!(rest[8 + len], b'\n', "value of {head} ends with a newline");
        fields.insert(head.to_string(), value.to_string());
        data = &rest[8 + len + 1..];
    }
    fields
}

/// Logs with the layer pointed at a listener in a temp dir; returns the datagrams' fields.
fn capture(log: impl FnOnce()) -> Vec<HashMap<String, String>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.sock");
    let listener = UnixDatagram::bind(&path).expect("bind fake journald");
    listener
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let layer = JournaldLayer::connect(&path).expect("connect");
    let mut buf = vec![0u8; 65536];
    // The connection probe is an empty datagram.
    assert_eq!(listener.recv(&mut buf).expect("probe"), 0);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), log);
    let mut entries = Vec::new();
    while let Ok(len) = listener.recv(&mut buf) {
        entries.push(decode(&buf[..len]));
    }
    entries
}

#[test]
fn an_event_is_one_entry_with_a_readable_message_and_its_own_fields() {
    let entries = capture(|| {
        tracing::error!(
            target: "guardian::kill",
            pid = 42,
            rule = "host-over-300mb",
            error = %"/etc/guardian/guardian.toml:3:1: unknown field `x`",
            "config reload rejected"
        );
    });
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(
        entry["MESSAGE"],
        "config reload rejected pid=42 rule=\"host-over-300mb\" \
         error=/etc/guardian/guardian.toml:3:1: unknown field `x`"
    );
    assert_eq!(entry["PRIORITY"], "3");
    assert_eq!(entry["SYSLOG_IDENTIFIER"], "guardian");
    assert_eq!(entry["TARGET"], "guardian::kill");
    assert_eq!(entry["GUARDIAN_PID"], "42");
    assert_eq!(entry["GUARDIAN_RULE"], "host-over-300mb");
    assert_eq!(
        entry["GUARDIAN_ERROR"],
        "/etc/guardian/guardian.toml:3:1: unknown field `x`"
    );
    assert!(entry["CODE_FILE"].ends_with("tests.rs"));
    assert!(entry["CODE_LINE"].parse::<u32>().is_ok());
}

#[test]
fn multi_line_values_survive() {
    let entries = capture(|| tracing::info!(detail = "a\nb", "two lines"));
    assert_eq!(entries[0]["GUARDIAN_DETAIL"], "a\nb");
    assert_eq!(entries[0]["PRIORITY"], "5");
}

#[test]
fn connect_fails_when_nobody_listens() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(JournaldLayer::connect(&dir.path().join("absent.sock")).is_err());
}

#[test]
fn field_names_use_journald_alphabet() {
    assert_eq!(field_name("pid"), "GUARDIAN_PID");
    assert_eq!(field_name("rss.bytes"), "GUARDIAN_RSS_BYTES");
    assert_eq!(field_name(&"x".repeat(100)).len(), 64);
}

#[test]
fn values_are_cut_on_character_boundaries() {
    assert_eq!(cut("héllo", 2), "h");
    assert_eq!(cut("héllo", 3), "hé");
    assert_eq!(cut("abc", 10), "abc");
    let entry = Entry {
        level: Level::WARN,
        target: "t",
        file: None,
        line: None,
        fields: Fields {
            message: "m".repeat(10_000),
            others: Vec::new(),
        },
    };
    assert_eq!(decode(&entry.encode(100))["MESSAGE"].len(), 100);
}

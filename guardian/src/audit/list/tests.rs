use super::*;
use crate::{
    audit::{Intent, KillLog, Outcome, OutcomeKind},
    config::KillLogConfig,
};

/// Three decisions: pid 1 exited, pid 2 permission denied (rule "other"), pid 3 pending.
fn sample_log(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("kills.jsonl");
    let mut log = KillLog::open(&KillLogConfig {
        path: path.clone(),
        ..KillLogConfig::default()
    })
    .expect("open");
    let seq = log.write_intent(&Intent::sample(1)).expect("intent");
    log.write_outcome(&Outcome::sample(seq, 1))
        .expect("outcome");
    let mut other = Intent::sample(2);
    other.rule = "other".into();
    let seq = log.write_intent(&other).expect("intent");
    let mut denied = Outcome::sample(seq, 2);
    denied.rule = "other".into();
    denied.outcome = OutcomeKind::PermissionDenied;
    log.write_outcome(&denied).expect("outcome");
    log.write_intent(&Intent::sample(3)).expect("intent");
    path
}

#[test]
fn decisions_join_intents_and_outcomes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_log(dir.path());
    let listing = read_decisions(&[path]).expect("read");
    assert!(listing.skipped.is_empty());
    // The lines as logged, intent first.
    let first = &listing.decisions[0].lines;
    assert_eq!(first.len(), 2);
    assert!(first[0].contains("\"kind\":\"intent\"") && first[1].contains("\"kind\":\"outcome\""));
    let summary: Vec<(u64, Option<i64>, &str, &str)> = listing
        .decisions
        .iter()
        .map(|d| (d.seq(), d.pid(), d.rule(), d.outcome()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, Some(1), "node-leak", "exited"),
            (3, Some(2), "other", "permission-denied"),
            (5, Some(3), "node-leak", "pending"),
        ]
    );
}

#[test]
fn filters_combine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listing = read_decisions(&[sample_log(dir.path())]).expect("read");
    let count = |filter: Filter| {
        listing
            .decisions
            .iter()
            .filter(|d| filter.matches(d))
            .count()
    };
    assert_eq!(count(Filter::default()), 3);
    assert_eq!(
        count(Filter {
            rule: Some("other".into()),
            ..Filter::default()
        }),
        1
    );
    assert_eq!(
        count(Filter {
            pid: Some(3),
            ..Filter::default()
        }),
        1
    );
    assert_eq!(
        count(Filter {
            outcome: Some("pending".into()),
            ..Filter::default()
        }),
        1
    );
    let now = OffsetDateTime::now_utc();
    let recent = parse_since("1h", now).expect("since");
    assert_eq!(
        count(Filter {
            since: Some(recent),
            ..Filter::default()
        }),
        3
    );
    let future = now + Duration::from_secs(60);
    assert_eq!(
        count(Filter {
            since: Some(future),
            ..Filter::default()
        }),
        0
    );
}

#[test]
fn since_accepts_times_and_durations() {
    let now = OffsetDateTime::parse("2026-05-20T12:00:00Z", &Rfc3339).expect("now");
    let parsed = parse_since("2026-05-20T10:00:00Z", now).expect("time");
    assert_eq!(parsed, now - Duration::from_secs(7200));
    assert_eq!(parse_since("2h", now).expect("duration"), parsed);
    assert!(parse_since("yesterday-ish", now).is_err());
}

#[test]
fn table_has_a_row_per_decision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listing = read_decisions(&[sample_log(dir.path())]).expect("read");
    let rows: Vec<&Decision> = listing.decisions.iter().collect();
    let table = format_table(&rows);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("SEQ"));
    assert!(
        lines[2].contains("permission-denied") && lines[2].contains("420.0 MiB"),
        "{table}"
    );
    let time = lines[1].split_whitespace().nth(1).expect("time column");
    assert!(
        time.ends_with('Z') && !time.contains('.'),
        "subseconds kept: {table}"
    );
}

#[test]
fn table_cells_escape_control_characters() {
    assert_eq!(
        printable("\u{1b}[2J\u{1b}]0;pwn\u{7}\r\n\u{9b}x"),
        "\\u{1b}[2J\\u{1b}]0;pwn\\u{7}\\r\\n\\u{9b}x"
    );
    assert_eq!(printable("node dist/main"), "node dist/main");
}

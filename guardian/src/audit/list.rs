//! Reading the kill log back as decisions (an intent joined with its outcome), with the
//! filters of `guardian audit list` and the `/api/v1/kills` endpoint.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufRead as _, BufReader},
    path::PathBuf,
    time::Duration,
};

use serde::Serialize;
use serde_json::{Map, Value};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::AuditError;

/// One kill decision: its intent and, once written, its outcome. Either can be missing
/// (an outcome not yet written or lost in a crash; an intent rotated away).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Decision {
    pub intent: Option<Map<String, Value>>,
    pub outcome: Option<Map<String, Value>>,
    /// The records' lines exactly as logged (they verify as they are).
    #[serde(skip)]
    pub lines: Vec<String>,
}

/// What reading the log ran into, besides decisions: lines that are not records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// Decisions in order of their intent's sequence number.
    pub decisions: Vec<Decision>,
    /// "file:line: reason" for every line skipped (run `guardian audit verify`).
    pub skipped: Vec<String>,
}

impl Decision {
    fn field(&self, key: &str) -> Option<&Value> {
        self.intent
            .as_ref()
            .and_then(|record| record.get(key))
            .or_else(|| self.outcome.as_ref().and_then(|record| record.get(key)))
    }

    /// The intent's sequence number (the outcome's `intent_seq` without an intent).
    pub fn seq(&self) -> u64 {
        self.intent
            .as_ref()
            .and_then(|record| record.get("seq"))
            .or_else(|| {
                self.outcome
                    .as_ref()
                    .and_then(|record| record.get("intent_seq"))
            })
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// When the decision was made (RFC 3339).
    pub fn time(&self) -> &str {
        self.field("time").and_then(Value::as_str).unwrap_or("")
    }

    pub fn rule(&self) -> &str {
        self.field("rule").and_then(Value::as_str).unwrap_or("")
    }

    pub fn pid(&self) -> Option<i64> {
        self.field("pid").and_then(Value::as_i64)
    }

    pub fn comm(&self) -> &str {
        self.field("comm").and_then(Value::as_str).unwrap_or("")
    }

    pub fn rss_bytes(&self) -> Option<u64> {
        self.field("rss_bytes").and_then(Value::as_u64)
    }

    /// The outcome ("exited", "dry-run", ...), or "pending" while none is written.
    pub fn outcome(&self) -> &str {
        self.outcome
            .as_ref()
            .and_then(|record| record.get("outcome"))
            .and_then(Value::as_str)
            .unwrap_or("pending")
    }
}

/// Reads the files in order (oldest first) and joins outcomes to their intents.
/// Lines that are not records are skipped and named; a torn last line is skipped quietly.
pub fn read_decisions(files: &[PathBuf]) -> Result<Listing, AuditError> {
    let mut by_seq: BTreeMap<u64, Decision> = BTreeMap::new();
    let mut skipped = Vec::new();
    for path in files {
        let file = File::open(path).map_err(|error| AuditError::io("open", path, error))?;
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        let mut number = 0;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|error| AuditError::io("read", path, error))?;
            if read == 0 || line.last() != Some(&b'\n') {
                break;
            }
            number += 1;
            let record: Map<String, Value> = match serde_json::from_slice(&line) {
                Ok(record) => record,
                Err(error) => {
                    skipped.push(format!("{}:{number}: {error}", path.display()));
                    continue;
                }
            };
            let kind = record.get("kind").and_then(Value::as_str);
            let key = match kind {
                Some("intent") => record.get("seq"),
                Some("outcome") => record.get("intent_seq"),
                _ => None,
            };
            let Some(key) = key.and_then(Value::as_u64) else {
                skipped.push(format!(
                    "{}:{number}: not an intent or outcome record",
                    path.display()
                ));
                continue;
            };
            let decision = by_seq.entry(key).or_default();
            let text = String::from_utf8_lossy(&line);
            decision.lines.push(text.trim_end_matches('\n').to_string());
            if kind == Some("intent") {
                decision.intent = Some(record);
            } else {
                decision.outcome = Some(record);
            }
        }
    }
    Ok(Listing {
        decisions: by_seq.into_values().collect(),
        skipped,
    })
}

/// The filters of `guardian audit list`; an absent filter matches everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<OffsetDateTime>,
    pub rule: Option<String>,
    pub pid: Option<i64>,
    /// An outcome name ("exited", "permission-denied", ...) or "pending".
    pub outcome: Option<String>,
}

impl Filter {
    /// True when `decision` passes every filter given.
    pub fn matches(&self, decision: &Decision) -> bool {
        let since = self.since.is_none_or(|since| {
            OffsetDateTime::parse(decision.time(), &Rfc3339).is_ok_and(|time| time >= since)
        });
        since
            && self
                .rule
                .as_deref()
                .is_none_or(|rule| decision.rule() == rule)
            && self.pid.is_none_or(|pid| decision.pid() == Some(pid))
            && self
                .outcome
                .as_deref()
                .is_none_or(|outcome| decision.outcome() == outcome)
    }
}

/// Outcome names `--outcome` accepts.
pub const OUTCOMES: &[&str] = &[
    "exited",
    "survived",
    "vanished",
    "permission-denied",
    "dry-run",
    "not-logged",
    "failed",
    "pending",
];

/// `--since`: an RFC 3339 time, or a duration before `now` ("1h", "30m", "2days").
pub fn parse_since(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(time);
    }
    let ago: Duration = humantime::parse_duration(text).map_err(|error| {
        format!("--since {text:?} is neither an RFC 3339 time nor a duration like \"1h\" ({error})")
    })?;
    Ok(now - ago)
}

/// The human table: one row per decision.
pub fn format_table(decisions: &[&Decision]) -> String {
    let header = ["SEQ", "TIME", "RULE", "PID", "COMM", "OUTCOME", "RSS"].map(String::from);
    let rows: Vec<[String; 7]> = decisions
        .iter()
        .map(|decision| {
            [
                decision.seq().to_string(),
                short_time(decision.time()),
                decision.rule().to_string(),
                decision
                    .pid()
                    .map(|pid| pid.to_string())
                    .unwrap_or_default(),
                decision.comm().to_string(),
                decision.outcome().to_string(),
                decision
                    .rss_bytes()
                    .map(|rss| bytesize::ByteSize::b(rss).display().iec().to_string())
                    .unwrap_or_default(),
            ]
        })
        .map(|row: [String; 7]| row.map(|cell| printable(&cell)))
        .collect();
    let mut widths = header.clone().map(|cell| cell.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A cell as a terminal may show it: control characters (newlines, ESC sequences that
/// would repaint the screen, C1 codes) escaped, since comm and command lines are the
/// processes' own text.
fn printable(cell: &str) -> String {
    if !cell.chars().any(char::is_control) {
        return cell.to_string();
    }
    cell.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// "2026-05-20T10:11:12.123456789Z" → "2026-05-20T10:11:12Z".
fn short_time(time: &str) -> String {
    match time.split_once('.') {
        Some((seconds, rest)) if rest.ends_with('Z') => format!("{seconds}Z"),
        _ => time.to_string(),
    }
}

#[cfg(test)]
mod tests;

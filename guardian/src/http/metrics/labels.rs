//! Label values for the exposition. prometheus-client 0.24 writes label values verbatim,
//! so text the guardian does not control (comm, cmdline, cgroup paths, error messages)
//! goes through [`Lv::Text`], which escapes it as both text formats require.

use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

use crate::classify::Classification;

/// Longest label value exported for free text (command lines, error messages), in bytes.
pub const MAX_TEXT_LABEL: usize = 256;

/// One label value.
#[derive(Clone, Copy, Debug)]
pub enum Lv<'a> {
    /// Any text: backslash, double quote and newline are escaped.
    Text(&'a str),
    /// Text cut to [`MAX_TEXT_LABEL`] bytes (at a character boundary), then escaped.
    Long(&'a str),
    Int(i64),
}

impl EncodeLabelValue for Lv<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        match *self {
            Lv::Text(text) => write_escaped(encoder, text),
            Lv::Long(text) => write_escaped(encoder, truncate(text, MAX_TEXT_LABEL)),
            Lv::Int(value) => write!(encoder, "{value}"),
        }
    }
}

/// Writes `text` with `\`, `"` and newline escaped (the only escapes the OpenMetrics and
/// the 0.0.4 text formats define; every other character, including invalid-UTF-8
/// replacement characters, is legal inside a quoted label value).
pub fn write_escaped(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    let mut rest = text;
    while let Some(at) = rest.find(['\\', '"', '\n']) {
        out.write_str(&rest[..at])?;
        out.write_str(match rest.as_bytes()[at] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        })?;
        rest = &rest[at + 1..];
    }
    out.write_str(rest)
}

/// `text` cut to at most `max` bytes at a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Where something runs, as labels: scope ("host", "container", "group" for a runtime's
/// own cgroups, "unknown"), container runtime and id (empty outside containers), systemd
/// unit (empty when none).
#[derive(Clone, Copy, Debug)]
pub struct Placement<'a> {
    pub scope: &'static str,
    pub runtime: &'a str,
    pub container_id: &'a str,
    pub unit: &'a str,
}

impl<'a> Placement<'a> {
    pub fn of(class: &'a Classification) -> Self {
        match class {
            Classification::Host { unit } => Placement {
                scope: "host",
                runtime: "",
                container_id: "",
                unit: unit.as_deref().unwrap_or(""),
            },
            Classification::Container { runtime, id, .. } => Placement {
                scope: "container",
                runtime: runtime.as_str(),
                container_id: id,
                unit: "",
            },
            Classification::Group { runtime, .. } => Placement {
                scope: "group",
                runtime: runtime.as_str(),
                container_id: "",
                unit: "",
            },
            Classification::Unknown => Placement {
                scope: "unknown",
                runtime: "",
                container_id: "",
                unit: "",
            },
        }
    }

    /// A short human name: the unit for host cgroups, the 12-character id for containers
    /// (as `docker ps` shows it), else the last path component.
    pub fn name(&self, path: &'a str) -> &'a str {
        if !self.unit.is_empty() {
            self.unit
        } else if !self.container_id.is_empty() {
            truncate(self.container_id, 12)
        } else {
            path.rsplit('/')
                .find(|part| !part.is_empty())
                .unwrap_or("/")
        }
    }
}

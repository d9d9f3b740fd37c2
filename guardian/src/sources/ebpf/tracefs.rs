//! Classic tracepoints need tracefs (their ids live there); it is not mounted by default
//! on every host. This mounts it when missing and checks that each field the programs
//! read sits where they expect it, per the event's `format` file.

use std::path::{Path, PathBuf};

use guardian_ebpf::tracepoint_fields::EXPECTED;

/// Where the kernel documents tracefs's mount point.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// Why tracefs or a tracepoint's layout is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error("cannot mount tracefs at {path}: {source}")]
    Mount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "tracepoint {event} field {field}: expected offset {expected_offset} size {expected_size}, the kernel says {found}"
    )]
    Layout {
        event: String,
        field: String,
        expected_offset: usize,
        expected_size: usize,
        found: String,
    },
}

/// Mounts tracefs at [`TRACEFS`] unless its events are already there.
pub fn ensure_mounted(root: &Path) -> Result<(), TracefsError> {
    if root.join("events").is_dir() {
        return Ok(());
    }
    nix::mount::mount(
        Some("nodev"),
        root,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|source| TracefsError::Mount {
        path: root.to_path_buf(),
        source,
    })
}

/// Checks every field of [`EXPECTED`] against the format files under `root/events`.
pub fn check_layouts(root: &Path) -> Result<(), TracefsError> {
    for (event, field, offset, size) in EXPECTED {
        let path = root.join("events").join(event).join("format");
        let text = std::fs::read_to_string(&path).map_err(|source| TracefsError::Read {
            path: path.clone(),
            source,
        })?;
        let found = field_layout(&text, field);
        if found != Some((*offset, *size)) {
            return Err(TracefsError::Layout {
                event: (*event).to_string(),
                field: (*field).to_string(),
                expected_offset: *offset,
                expected_size: *size,
                found: found.map_or("no such field".to_string(), |(o, s)| {
                    format!("offset {o} size {s}")
                }),
            });
        }
    }
    Ok(())
}

/// `(offset, size)` of `field` in a tracepoint format file.
fn field_layout(format: &str, field: &str) -> Option<(usize, usize)> {
    format.lines().find_map(|line| {
        let mut parts = line.trim().split(';').map(str::trim);
        let declaration = parts.next()?.strip_prefix("field:")?;
        let name = declaration.rsplit([' ', '*']).next()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        let mut offset = None;
        let mut size = None;
        for part in parts {
            if let Some(value) = part.strip_prefix("offset:") {
                offset = value.parse().ok();
            } else if let Some(value) = part.strip_prefix("size:") {
                size = value.parse().ok();
            }
        }
        Some((offset?, size?))
    })
}

#[cfg(test)]
mod tests {
    use super::field_layout;

    const MARK_VICTIM: &str = "name: mark_victim\nformat:\n\
        \tfield:int pid;\toffset:8;\tsize:4;\tsigned:1;\n\
        \tfield:__data_loc char[] comm;\toffset:12;\tsize:4;\tsigned:0;\n\
        \tfield:char comm2[16];\toffset:24;\tsize:16;\tsigned:0;\n";

    #[test]
    fn finds_plain_data_loc_and_array_fields() {
        assert_eq!(field_layout(MARK_VICTIM, "pid"), Some((8, 4)));
        assert_eq!(field_layout(MARK_VICTIM, "comm"), Some((12, 4)));
        assert_eq!(field_layout(MARK_VICTIM, "comm2"), Some((24, 16)));
        assert_eq!(field_layout(MARK_VICTIM, "uid"), None);
    }
}

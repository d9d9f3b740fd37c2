//! tracefs for bpftrace's classic tracepoint: mounted when missing, and unmounted again
//! on drop only if this benchmark mounted it.

use std::path::Path;

use anyhow::bail;

const TRACEFS: &str = "/sys/kernel/tracing";

/// Proof that tracefs is mounted for as long as this lives.
pub struct Tracefs {
    mounted_here: bool,
}

impl Tracefs {
    pub fn ensure() -> anyhow::Result<Tracefs> {
        if Path::new(TRACEFS).join("events").is_dir() {
            return Ok(Tracefs {
                mounted_here: false,
            });
        }
        let status = std::process::Command::new("mount")
            .args(["-t", "tracefs", "nodev", TRACEFS])
            .status()?;
        if !status.success() {
            bail!("mount -t tracefs nodev {TRACEFS} failed: {status}");
        }
        Ok(Tracefs { mounted_here: true })
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if self.mounted_here {
            // Lazy: a guardian still attached keeps its references until it exits.
            let _ = std::process::Command::new("umount")
                .args(["-l", TRACEFS])
                .status();
        }
    }
}

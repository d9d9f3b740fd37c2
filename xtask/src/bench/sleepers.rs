//! Many idle processes of our own for the /proc scan benchmark: `sleep` children in one
//! process group of their own, so exactly they are killed (one `killpg`) and reaped on
//! drop.

use std::{
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use anyhow::{Context as _, bail};

use super::harness;

/// `n` sleeping children in their own process group.
pub struct Sleepers {
    children: Vec<Child>,
    pgid: i32,
}

impl Sleepers {
    /// Starts `n` sleepers; the first leads a new process group the others join.
    pub fn spawn(n: usize) -> anyhow::Result<Sleepers> {
        let sleep = sleep_binary()?;
        let mut sleepers = Sleepers {
            children: Vec::with_capacity(n),
            pgid: 0,
        };
        for _ in 0..n {
            harness::check_interrupted()?;
            let child = Command::new(&sleep)
                .arg("100000")
                .process_group(sleepers.pgid)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| {
                    format!(
                        "starting sleeper {} of {n} ({})",
                        sleepers.children.len() + 1,
                        sleep.display()
                    )
                })?;
            if sleepers.pgid == 0 {
                sleepers.pgid = child.id() as i32;
            }
            sleepers.children.push(child);
        }
        Ok(sleepers)
    }

    pub fn len(&self) -> usize {
        self.children.len()
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        if self.pgid > 0 {
            // Only our children are in this group: its leader is our child and a pgid is
            // not reused while any member lives.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}

fn sleep_binary() -> anyhow::Result<PathBuf> {
    ["/bin/sleep", "/usr/bin/sleep"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .map_or_else(|| bail!("no sleep binary in /bin or /usr/bin"), Ok)
}

//! Helpers the unit tests share: a child process of their own to look at.

use std::{process::Child, time::Duration};

/// A `sleep` child of the test, killed and reaped on every path (tests only ever signal
/// processes they started).
pub struct Sleeper(Child);

impl Sleeper {
    pub fn spawn() -> Sleeper {
        Sleeper(
            std::process::Command::new("sleep")
                .arg("1000")
                .spawn()
                .expect("spawn sleep"),
        )
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Kills and reaps it: its pid is free for reuse afterwards.
    pub fn end(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.end();
    }
}

/// Waits until `pid` shows `comm` (a just-spawned child may still be the test binary).
pub fn wait_for_comm(pid: i32, comm: &str) {
    let path = format!("/proc/{pid}/comm");
    for _ in 0..500 {
        if std::fs::read_to_string(&path).is_ok_and(|text| text.trim_end() == comm) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{pid} never became {comm}");
}

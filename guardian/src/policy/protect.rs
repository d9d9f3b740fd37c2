//! What is never killed, whatever the rules say: PID 1, kernel threads, the guardian
//! itself, processes the kernel's OOM killer may not touch either (`oom_score_adj`
//! -1000), the built-in list of system daemons and container runtimes, and the
//! `[safety]` protect lists of the config.

use std::fmt;

use serde::Serialize;

use crate::{
    config::{Glob, Pattern, SafetyConfig},
    model::Process,
};

use super::{
    rules::host_unit,
    vetting::{Vetting, truncate_comm},
};

/// Programs always protected: init and systemd (also `systemd --user`), remote
/// access, logging and device daemons, the message bus, container engines, runtimes and
/// their helpers, the kubelet and Nomad, and the guardian (another instance of it).
/// Compared with `/proc/PID/comm`, which the kernel cuts to 15 bytes
/// (`containerd-shim-runc-v2` shows as `containerd-shim`), and then with the executable:
/// a name counts only when `/proc/PID/exe` is that program and a root-owned system
/// binary, since any process can rename itself.
pub const BUILTIN_COMMS: &[&str] = &[
    "init",
    "systemd",
    "sshd",
    "sshd-session",
    "systemd-journald",
    "systemd-udevd",
    "udevd",
    "systemd-logind",
    "dbus-daemon",
    "dbus-broker",
    "dbus-broker-launch",
    "dockerd",
    "docker-proxy",
    "containerd",
    "containerd-shim",
    "runc",
    "crun",
    "crio",
    "conmon",
    "podman",
    "kubelet",
    "lxc-start",
    "lxc-attach",
    "lxd",
    "incusd",
    "systemd-nspawn",
    "nomad",
    "guardian",
];

/// Why a process is never killed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", content = "detail", rename_all = "kebab-case")]
pub enum Protected {
    Init,
    KernelThread,
    Guardian,
    /// `oom_score_adj` is -1000: the owner asked that it never be OOM-killed.
    OomUnkillable,
    /// A built-in program, its executable checked.
    BuiltinComm(String),
    /// A container runtime's helper (shim, conmon, monitor), its executable checked.
    RuntimeHelper {
        comm: String,
        runtime: String,
    },
    ConfigComm(String),
    ConfigCmdline(String),
    ConfigUnit(String),
}

impl fmt::Display for Protected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protected::Init => write!(f, "PID 1 is never killed"),
            Protected::KernelThread => write!(f, "kernel threads are never killed"),
            Protected::Guardian => write!(f, "the guardian never kills itself"),
            Protected::OomUnkillable => {
                write!(f, "oom_score_adj is -1000 (exempt from OOM kills)")
            }
            Protected::BuiltinComm(comm) => write!(
                f,
                "{comm:?} is on the built-in list (its executable checked)"
            ),
            Protected::RuntimeHelper { comm, runtime } => write!(
                f,
                "{comm:?} is a {runtime} runtime helper (its executable checked)"
            ),
            Protected::ConfigComm(comm) => write!(f, "comm {comm:?} is in safety.protect_comm"),
            Protected::ConfigCmdline(pattern) => {
                write!(f, "cmdline matches safety.protect_cmdline {pattern:?}")
            }
            Protected::ConfigUnit(glob) => write!(f, "unit matches safety.protect_units {glob:?}"),
        }
    }
}

/// The protect list, built-in plus config.
#[derive(Clone, Debug)]
pub(crate) struct ProtectList {
    self_pid: i32,
    comm: Vec<String>,
    cmdline: Vec<Pattern>,
    units: Vec<Glob>,
}

impl ProtectList {
    pub(crate) fn new(safety: &SafetyConfig, self_pid: i32) -> Self {
        ProtectList {
            self_pid,
            comm: safety.protect_comm.clone(),
            cmdline: safety.protect_cmdline.clone(),
            units: safety.protect_units.clone(),
        }
    }

    pub(crate) fn self_pid(&self) -> i32 {
        self.self_pid
    }

    /// Why `process` is protected, or `None` when a rule may kill it.
    pub(crate) fn check(&self, process: &Process, vetting: &Vetting) -> Option<Protected> {
        if process.key.pid == 1 {
            return Some(Protected::Init);
        }
        if process.kernel_thread {
            return Some(Protected::KernelThread);
        }
        if process.key.pid == self.self_pid {
            return Some(Protected::Guardian);
        }
        if process.oom_score_adj <= -1000 {
            return Some(Protected::OomUnkillable);
        }
        if let Some(name) = builtin_name(process)
            && vetting.is_program(process, name)
        {
            return Some(match vetting.helper_runtime(process) {
                Some(runtime) => Protected::RuntimeHelper {
                    comm: process.comm.clone(),
                    runtime: runtime.to_string(),
                },
                None => Protected::BuiltinComm(name.to_string()),
            });
        }
        if let Some(comm) = self.comm.iter().find(|comm| **comm == process.comm) {
            return Some(Protected::ConfigComm(comm.clone()));
        }
        if !self.cmdline.is_empty() {
            let cmdline = process.cmdline.join(" ");
            if let Some(pattern) = self.cmdline.iter().find(|p| p.is_match(&cmdline)) {
                return Some(Protected::ConfigCmdline(pattern.0.as_str().to_string()));
            }
        }
        let unit = host_unit(&process.class)?;
        self.units
            .iter()
            .find(|glob| glob.matches(unit))
            .map(|glob| Protected::ConfigUnit(glob.0.as_str().to_string()))
    }
}

/// The built-in name `process`'s comm claims, whether or not its executable agrees.
pub(crate) fn builtin_name(process: &Process) -> Option<&'static str> {
    BUILTIN_COMMS
        .iter()
        .find(|name| truncate_comm(name) == process.comm)
        .copied()
}

//! What the policy believes of a process beyond what it says of itself.
//!
//! Any process can call itself `sshd` (`prctl(PR_SET_NAME)`, writing `/proc/self/comm`)
//! and an unprivileged user can create cgroups with any name in the subtree systemd
//! delegates to them (`/docker/<64 hex>` included). Neither may take a host process out
//! of a host rule, so:
//!
//! - a built-in protected name counts only when the process's executable
//!   (`/proc/PID/exe`) has that name and is a system binary: owned by root, writable by
//!   nobody else;
//! - a container (or a runtime's group) counts as one only when confirmed: the process
//!   or one of its ancestors is a runtime's helper (shim, conmon, LXC monitor,
//!   systemd-nspawn, Nomad's executor) vetted the same way, or the container's first
//!   process as its runtime reports it (a known id alone is not enough: anyone can read
//!   a real container's id and name a cgroup after it). An unconfirmed container is a
//!   host process to the rules.
//!
//! - an unknown layout in a cgroup an unprivileged user made (its directory is not
//!   root's) needs the same confirmation; one root made stays unknown.
//!
//! Answers are cached per process (pid and start time) and per `comm`, so the steady
//! state costs a hash lookup; entries of processes that left the model are dropped.

use std::{
    borrow::Cow,
    collections::HashMap,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::Mutex,
};

use serde::Serialize;

use crate::{
    classify::Classification,
    model::{Model, Process, ProcessKey},
};

/// How many ancestors are walked looking for a runtime helper (container trees are a
/// few levels deep; a chain this long is a fork bomb, not a container).
const MAX_ANCESTORS: usize = 64;

/// Runtime helpers: the process that is the parent of a container's first process, by
/// `comm` (cut to 15 bytes as the kernel does), with the runtime they serve.
pub const RUNTIME_HELPERS: &[(&str, &str)] = &[
    // containerd-shim-runc-v2, -runsc-v1, -kata-v2 (Docker, containerd, Kubernetes).
    ("containerd-shim", "containerd"),
    // Docker 17.x's docker-containerd-shim.
    ("docker-containe", "docker"),
    // Podman and CRI-O.
    ("conmon", "conmon"),
    // LXC's monitor (Proxmox, plain LXC), LXD's and Incus's.
    ("lxc-start", "lxc"),
    // What `lxc-attach` runs in a container is its child, not the monitor's.
    ("lxc-attach", "lxc"),
    ("lxd", "lxd"),
    ("incusd", "incus"),
    ("systemd-nspawn", "systemd-nspawn"),
    // Nomad's executor for exec/raw_exec/java tasks.
    ("nomad", "nomad"),
];

/// Other names a protected program's executable may have: `systemd-udevd` is a link to
/// `udevadm` on current systemd, init is usually systemd.
const EXE_ALIASES: &[(&str, &str)] = &[
    ("systemd-udevd", "udevadm"),
    ("udevd", "udevadm"),
    ("init", "systemd"),
];

/// A process's executable as `/proc/PID/exe` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Executable {
    /// The path (without the kernel's ` (deleted)` mark of a replaced binary).
    pub path: String,
    /// Owned by root and writable by nobody else: a binary an unprivileged user could
    /// not have put there.
    pub system: bool,
}

impl Executable {
    fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Why a process counts as inside a container (or a runtime's group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Confirmation {
    /// The runtime helper found among the process and its ancestors.
    pub helper_pid: i32,
    pub helper_comm: String,
    pub runtime: String,
}

/// What vetting says of one process's classification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Vetted {
    /// A host process, or an unknown layout in a cgroup root made: nothing to confirm.
    NotNeeded,
    Confirmed(Confirmation),
    /// The runtime reported the container's first process, and this is it or one of
    /// its descendants.
    KnownToRuntime,
    /// No runtime helper among the process's ancestors: to the rules it is a host
    /// process, whatever its cgroup is called.
    Unconfirmed,
    /// Some ancestor is not in the model yet, or an ancestor named like a runtime
    /// helper has an executable the guardian cannot read (without CAP_SYS_PTRACE a
    /// shim's `/proc/PID/exe` is closed to it): the path's word is kept for now.
    Incomplete,
}

/// The caches behind vetting, shared by evaluation and `explain`.
#[derive(Debug)]
pub(crate) struct Vetting {
    proc_root: PathBuf,
    executables: Mutex<HashMap<ProcessKey, (String, Option<Executable>)>>,
    confirmations: Mutex<HashMap<ProcessKey, Vetted>>,
    /// Host pid of each container's first process, as its runtime reported it.
    container_pids: HashMap<String, i32>,
    /// The memory hierarchy's root directory: who owns a process's cgroup says whether
    /// an unprivileged user made it.
    cgroup_root: Option<PathBuf>,
}

impl Vetting {
    pub(crate) fn new(proc_root: impl Into<PathBuf>) -> Self {
        Vetting {
            proc_root: proc_root.into(),
            executables: Mutex::new(HashMap::new()),
            confirmations: Mutex::new(HashMap::new()),
            container_pids: HashMap::new(),
            cgroup_root: None,
        }
    }

    /// The runtimes' container first pids (replaces the previous map).
    pub(crate) fn set_container_pids(&mut self, pids: HashMap<String, i32>) {
        if pids != self.container_pids {
            self.container_pids = pids;
            if let Ok(mut confirmations) = self.confirmations.lock() {
                confirmations.clear();
            }
        }
    }

    /// Where the memory hierarchy is mounted (`/sys/fs/cgroup/memory` on v1).
    pub(crate) fn set_cgroup_root(&mut self, root: PathBuf) {
        self.cgroup_root = Some(root);
    }

    /// Whether the memory cgroup of `process` is a directory someone other than root
    /// owns: made in a subtree delegated to an unprivileged user.
    fn user_made_cgroup(&self, process: &Process) -> bool {
        let (Some(root), Some(path)) = (&self.cgroup_root, &process.memory_cgroup) else {
            return false;
        };
        let Some(relative) = path.strip_prefix('/') else {
            return false;
        };
        if relative.split('/').any(|part| part == ".." || part == ".") {
            return false;
        }
        std::fs::metadata(root.join(relative)).is_ok_and(|metadata| metadata.uid() != 0)
    }

    /// Drops what is cached of processes no longer in the model.
    pub(crate) fn forget_gone(&self, model: &Model) {
        if let Ok(mut cache) = self.executables.lock() {
            cache.retain(|key, _| model.process(key).is_some());
        }
        if let Ok(mut cache) = self.confirmations.lock() {
            cache.retain(|key, _| model.process(key).is_some());
        }
    }

    /// The executable of `process`, read once per process and `comm` (an exec changes
    /// both).
    pub(crate) fn executable(&self, process: &Process) -> Option<Executable> {
        if let Ok(cache) = self.executables.lock()
            && let Some((comm, exe)) = cache.get(&process.key)
            && *comm == process.comm
        {
            return exe.clone();
        }
        let exe = read_executable(&self.proc_root, process.key.pid);
        if let Ok(mut cache) = self.executables.lock() {
            cache.insert(process.key, (process.comm.clone(), exe.clone()));
        }
        exe
    }

    /// Whether `process` really is the program `name` (a `comm` as the kernel shows
    /// it): its executable is a system binary whose file name, cut like `comm`, is
    /// `name` or an alias of it.
    pub(crate) fn is_program(&self, process: &Process, name: &str) -> bool {
        let Some(exe) = self.executable(process) else {
            return false;
        };
        let file = truncate_comm(exe.file_name());
        exe.system
            && (file == truncate_comm(name)
                || EXE_ALIASES
                    .iter()
                    .any(|(comm, alias)| *comm == name && file == *alias))
    }

    /// The runtime `process` is a helper of, when its comm says so and its executable
    /// agrees.
    pub(crate) fn helper_runtime(&self, process: &Process) -> Option<&'static str> {
        let (_, runtime) = RUNTIME_HELPERS
            .iter()
            .find(|(comm, _)| *comm == process.comm)?;
        self.is_program(process, &process.comm).then_some(*runtime)
    }

    /// Whether the classification of `process` stands: see the module documentation.
    pub(crate) fn vet(&self, process: &Process, model: &Model) -> Vetted {
        let id = match &*process.class {
            Classification::Container { id, .. } => Some(id.as_str()),
            Classification::Group { .. } => None,
            Classification::Unknown => None,
            Classification::Host { .. } => return Vetted::NotNeeded,
        };
        if let Ok(cache) = self.confirmations.lock()
            && let Some(vetted) = cache.get(&process.key)
        {
            return vetted.clone();
        }
        let init_pid = id.and_then(|id| self.container_pids.get(id)).copied();
        // An unknown layout root made (a VM's scope, a CI job's cgroup) stays unknown;
        // one an unprivileged user made needs a runtime above it like a container.
        let vetted = if *process.class == Classification::Unknown && !self.user_made_cgroup(process)
        {
            Vetted::NotNeeded
        } else {
            self.walk(process, model, init_pid)
        };
        if vetted != Vetted::Incomplete
            && let Ok(mut cache) = self.confirmations.lock()
        {
            cache.insert(process.key, vetted.clone());
        }
        vetted
    }

    /// Walks up from `process`: a runtime helper, or the container's first process as
    /// its runtime reported it (`init_pid`), confirms it.
    fn walk(&self, process: &Process, model: &Model, init_pid: Option<i32>) -> Vetted {
        let mut current = process;
        for _ in 0..MAX_ANCESTORS {
            if init_pid == Some(current.key.pid) {
                return Vetted::KnownToRuntime;
            }
            // A runtime's name whose executable cannot be read is neither confirmed nor
            // refuted: sparing a container beats killing it on a missing capability.
            if is_helper_name(&current.comm) && self.executable(current).is_none() {
                return Vetted::Incomplete;
            }
            if let Some(runtime) = self.helper_runtime(current) {
                return Vetted::Confirmed(Confirmation {
                    helper_pid: current.key.pid,
                    helper_comm: current.comm.clone(),
                    runtime: runtime.to_string(),
                });
            }
            if current.ppid <= 1 {
                return Vetted::Unconfirmed;
            }
            match model.process_by_pid(current.ppid) {
                Some(parent) => current = parent,
                None => return Vetted::Incomplete,
            }
        }
        Vetted::Unconfirmed
    }

    /// The classification the rules see: an unconfirmed container, group or user-made
    /// unknown layout is a host process (without a unit: its cgroup is not one systemd
    /// made).
    pub(crate) fn scope_class<'a>(
        &self,
        process: &'a Process,
        model: &Model,
    ) -> Cow<'a, Classification> {
        match self.vet(process, model) {
            Vetted::Unconfirmed => Cow::Owned(Classification::Host { unit: None }),
            _ => Cow::Borrowed(&process.class),
        }
    }
}

/// Whether `comm` is a runtime helper's name (whatever the executable).
fn is_helper_name(comm: &str) -> bool {
    RUNTIME_HELPERS.iter().any(|(name, _)| *name == comm)
}

/// Reads `/proc/PID/exe`: the link for the path, the file it leads to for the owner.
fn read_executable(proc_root: &Path, pid: i32) -> Option<Executable> {
    let link = proc_root.join(pid.to_string()).join("exe");
    let target = std::fs::read_link(&link).ok()?;
    let metadata = std::fs::metadata(&link).ok()?;
    let path = target.to_string_lossy();
    let path = path.strip_suffix(" (deleted)").unwrap_or(&path).to_string();
    Some(Executable {
        path,
        system: metadata.uid() == 0 && metadata.mode() & 0o022 == 0,
    })
}

/// The kernel's `TASK_COMM_LEN` less its terminating NUL.
const COMM_LEN: usize = 15;

/// A name as `/proc/PID/comm` shows it.
pub(crate) fn truncate_comm(name: &str) -> &str {
    let mut end = name.len().min(COMM_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

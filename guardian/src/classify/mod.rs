//! Tells host processes from containers by their cgroup paths, on v1, hybrid and v2.
//!
//! The cron script this project replaces skipped anything whose `/proc/PID/cgroup`
//! "looked like" a container. Here every known runtime layout is parsed for real
//! (runtime, container id, Kubernetes pod and QoS class), plain host paths yield the
//! process's systemd unit, and anything container-like that matches no known layout is
//! reported as [`Classification::Unknown`] instead of being guessed.

#[cfg(test)]
mod corpus;
mod path;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;

pub use path::classify_path;

/// One line of `/proc/PID/cgroup`: hierarchy id, controllers, path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CgroupLine {
    pub hierarchy: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

/// The container runtime (or manager) a cgroup path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Runtime {
    /// Docker engine: cgroupfs `/docker/<id>` or systemd `docker-<id>.scope`.
    #[serde(rename = "docker")]
    Docker,
    /// containerd's CRI plugin: `cri-containerd-<id>.scope`.
    #[serde(rename = "containerd")]
    Containerd,
    /// A Kubernetes container whose path does not name the CRI runtime (kubelet's
    /// cgroupfs driver: `/kubepods/<qos>/pod<uid>/<id>`), or a kubelet-managed cgroup.
    #[serde(rename = "kubernetes")]
    Kubernetes,
    /// CRI-O: `crio-<id>.scope` or cgroupfs `crio-<id>`.
    #[serde(rename = "cri-o")]
    Crio,
    /// Podman, rootful or rootless: `libpod-<id>.scope`.
    #[serde(rename = "podman")]
    Podman,
    /// LXC and LXD: `/lxc/<name>`, `/lxc.payload.<name>`.
    #[serde(rename = "lxc")]
    Lxc,
    /// systemd-nspawn: `/machine.slice/machine-<name>.scope`,
    /// `systemd-nspawn@<name>.service`.
    #[serde(rename = "systemd-nspawn")]
    Nspawn,
    /// HashiCorp Nomad's own task cgroups (exec, raw_exec, java drivers):
    /// `nomad.slice/share.slice/<alloc id>.<task>.scope`.
    #[serde(rename = "nomad")]
    Nomad,
}

impl Runtime {
    /// The name used in JSON, metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::Kubernetes => "kubernetes",
            Runtime::Crio => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Lxc => "lxc",
            Runtime::Nspawn => "systemd-nspawn",
            Runtime::Nomad => "nomad",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Kubernetes pod's quality-of-service class, from its place under `kubepods`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "guaranteed",
            QosClass::Burstable => "burstable",
            QosClass::BestEffort => "besteffort",
        }
    }
}

/// Where a process (or cgroup) runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Classification {
    /// Outside any container; `unit` is its systemd unit (`foo.service`,
    /// `session-3.scope`, `user@1000.service`) when the path names one.
    Host { unit: Option<String> },
    /// Inside a container.
    Container {
        runtime: Runtime,
        /// Container id (64 hex digits) or, for LXC and systemd-nspawn, its name; for
        /// Nomad `<alloc id>.<task>`.
        id: String,
        /// Kubernetes pod UID (with dashes), when under `kubepods`.
        pod_uid: Option<String>,
        /// Kubernetes QoS class, when under `kubepods`.
        qos: Option<QosClass>,
    },
    /// A cgroup a runtime manages that is not itself a container: the parents of
    /// containers (`/docker`, `kubepods` QoS and pod slices, `/lxc.payload`) and runtime
    /// monitors (`libpod-conmon-<id>.scope`, `crio-conmon-<id>.scope`,
    /// `lxc.monitor.<name>`). Not a host process either: rules for hosts leave it alone.
    Group {
        runtime: Runtime,
        pod_uid: Option<String>,
        qos: Option<QosClass>,
    },
    /// A layout the classifier does not know; reported as such, never guessed.
    #[default]
    Unknown,
}

impl Classification {
    /// `host`, `container`, `group` or `unknown`: a bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Classification::Host { .. } => "host",
            Classification::Container { .. } => "container",
            Classification::Group { .. } => "group",
            Classification::Unknown => "unknown",
        }
    }

    /// The runtime, for containers and runtime-managed groups.
    pub fn runtime(&self) -> Option<Runtime> {
        match self {
            Classification::Container { runtime, .. } | Classification::Group { runtime, .. } => {
                Some(*runtime)
            }
            Classification::Host { .. } | Classification::Unknown => None,
        }
    }

    /// The systemd unit of a host process.
    pub fn unit(&self) -> Option<&str> {
        match self {
            Classification::Host { unit } => unit.as_deref(),
            _ => None,
        }
    }
}

/// Classifies a process from its `/proc/PID/cgroup` lines.
///
/// The memory controller's line is read first (it decides which container is charged),
/// then `name=systemd`, then the v2 `0::` line, then the rest. A container on any line
/// wins, then a runtime-managed group, then an unknown layout; only when every line is a
/// plain host path is the process a host process, with the first unit any line names.
/// No lines at all is [`Classification::Unknown`].
pub fn classify(lines: &[CgroupLine]) -> Classification {
    let rank = |line: &CgroupLine| {
        if line.controllers.iter().any(|c| c == "memory") {
            0
        } else if line.controllers.iter().any(|c| c == "name=systemd") {
            1
        } else if line.hierarchy == 0 {
            2
        } else {
            3
        }
    };
    let mut ordered: Vec<&CgroupLine> = lines.iter().collect();
    ordered.sort_by_key(|line| rank(line));

    let mut group = None;
    let mut unknown = ordered.is_empty();
    let mut unit = None;
    for line in ordered {
        match classify_path(&line.path) {
            container @ Classification::Container { .. } => return container,
            found @ Classification::Group { .. } => {
                group.get_or_insert(found);
            }
            Classification::Unknown => unknown = true,
            Classification::Host { unit: found } => {
                if unit.is_none() {
                    unit = found;
                }
            }
        }
    }
    match (group, unknown) {
        (Some(group), _) => group,
        (None, true) => Classification::Unknown,
        (None, false) => Classification::Host { unit },
    }
}

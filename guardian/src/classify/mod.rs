//! Tells host processes from containers by their cgroup paths, on v1, hybrid and v2.

use serde::Serialize;

/// Where a process (or cgroup) runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Classification {
    /// Outside any container; `unit` is its systemd unit when it has one.
    Host { unit: Option<String> },
    /// Inside a container.
    Container { runtime: String, id: String },
    /// A layout the classifier does not know; reported as such, never guessed.
    #[default]
    Unknown,
}

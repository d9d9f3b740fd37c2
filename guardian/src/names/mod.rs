//! Containers as operators name them: name, image and Kubernetes pod, from the runtimes.
//!
//! Classification finds a container's id in its cgroup path; this module asks the
//! runtimes what that id is called, once per container: the Docker Engine API (Docker,
//! and Podman's Docker-compatible service) over its unix socket, the Kubernetes CRI
//! (containerd's CRI plugin, CRI-O) over its gRPC socket, and the OCI bundles
//! containerd and CRI-O keep per container (`config.json`, whose annotations carry the
//! Kubernetes pod and container names, and `init.pid`).
//!
//! Lookups run in their own task ([`run`]) when a container id appears in the model
//! that the table does not know yet, and never on the scrape or kill path: those only
//! read the [`NameTable`]. Every socket request has a timeout; a missing, slow or hostile
//! socket only costs that and a count in `guardian_container_lookups_total`.

mod bundles;
mod cri;
mod engine;
#[cfg(test)]
mod tests;

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::sync::watch;

use crate::{classify::Classification, config::ContainersConfig, model::Model};

pub use bundles::read_bundle;
pub use cri::{SANDBOX_NAME, query as query_cri};
pub use engine::{LookupError, inspect};

/// How often the task looks for containers it has not named yet.
const POLL: Duration = Duration::from_secs(1);
/// How long an id no runtime could name waits before it is asked about again.
const RETRY: Duration = Duration::from_secs(60);
/// Most ids looked up in one round (the rest wait for the next).
const BATCH: usize = 64;

/// What a runtime says of one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ContainerName {
    /// Which answered: "docker-api" (an Engine API socket), "cri" (a CRI socket),
    /// "containerd" or "cri-o" (a bundle).
    pub source: &'static str,
    /// The container's name (`docker ps` NAMES, the Kubernetes container name, `POD`
    /// for a pod's sandbox, or for a plain containerd container its id).
    pub name: String,
    /// The image as the user named it, when known.
    pub image: Option<String>,
    /// containerd namespace, when the bundle says.
    pub namespace: Option<String>,
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
    /// The pod's uid (the CRI's, or kubelet's label).
    pub pod_uid: Option<String>,
    /// Host pid of the container's first process, as the runtime reports it.
    pub init_pid: Option<i32>,
}

/// Names by container id; read by metrics, the API, `explain` and the kill path.
#[derive(Clone, Debug, Default)]
pub struct NameTable {
    by_id: HashMap<String, Arc<ContainerName>>,
    /// Bumped on every change, so readers can tell cheaply whether to re-read.
    generation: u64,
}

impl NameTable {
    /// The name of container `id`, when a runtime gave it.
    pub fn get(&self, id: &str) -> Option<&Arc<ContainerName>> {
        self.by_id.get(id)
    }

    /// The name of the container `class` places a process or cgroup in.
    pub fn of(&self, class: &Classification) -> Option<&Arc<ContainerName>> {
        match class {
            Classification::Container { id, .. } => self.get(id),
            _ => None,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<ContainerName>)> {
        self.by_id.iter()
    }

    /// Container id to the host pid of its first process, for confirming containers.
    pub fn init_pids(&self) -> HashMap<String, i32> {
        self.by_id
            .iter()
            .filter_map(|(id, name)| Some((id.clone(), name.init_pid?)))
            .collect()
    }

    /// Adds or replaces the name of container `id` (the lookup task's write; public for
    /// the benchmark's tables).
    pub fn insert(&mut self, id: String, name: ContainerName) {
        self.by_id.insert(id, Arc::new(name));
        self.generation += 1;
    }

    /// Forgets containers that are gone from the model.
    fn retain(&mut self, present: &HashSet<String>) {
        let before = self.by_id.len();
        self.by_id.retain(|id, _| present.contains(id));
        if self.by_id.len() != before {
            self.generation += 1;
        }
    }
}

/// Lookup counters, by result: a name found, no runtime knew the id, or an error
/// (timeout, refused connection, bad answer).
#[derive(Debug, Default)]
pub struct LookupCounters {
    pub found: AtomicU64,
    pub unknown: AtomicU64,
    pub error: AtomicU64,
}

/// The table and its counters, shared by the lookup task and the readers. Readers take
/// the current table (an `Arc`) and hold no lock while they use it; the lookup task
/// publishes a changed copy.
#[derive(Debug, Default)]
pub struct Names {
    table: RwLock<Arc<NameTable>>,
    pub lookups: LookupCounters,
}

impl Names {
    /// The current table.
    pub fn current(&self) -> Arc<NameTable> {
        self.table.read().map_or_else(
            |poisoned| Arc::clone(&poisoned.into_inner()),
            |table| Arc::clone(&table),
        )
    }

    /// Publishes the current table changed by `change` (only when it changed).
    fn update(&self, change: impl FnOnce(&mut NameTable)) {
        let mut next = NameTable::clone(&self.current());
        let before = next.generation;
        change(&mut next);
        if next.generation != before
            && let Ok(mut table) = self.table.write()
        {
            *table = Arc::new(next);
        }
    }
}

/// Where names are looked up.
#[derive(Clone, Debug)]
pub struct Lookup {
    pub engine_sockets: Vec<PathBuf>,
    pub cri_sockets: Vec<PathBuf>,
    pub bundle_dirs: Vec<PathBuf>,
    pub timeout: Duration,
}

impl Lookup {
    pub fn from_config(config: &ContainersConfig) -> Self {
        Lookup {
            engine_sockets: config.engine_sockets.clone(),
            cri_sockets: config.cri_sockets.clone(),
            bundle_dirs: config.bundle_dirs.clone(),
            timeout: config.lookup_timeout.0,
        }
    }

    /// Asks every runtime about `id` in turn: the Engine API sockets, the CRI sockets
    /// (with the bundle's `init.pid`), then the bundle directories. `Ok(None)` when none
    /// knows it; the first error when none knows it and some could not answer.
    pub async fn name_of(&self, id: &str) -> Result<Option<ContainerName>, LookupError> {
        let mut failure = None;
        for socket in &self.engine_sockets {
            if !socket.exists() {
                continue;
            }
            match inspect(socket, id, self.timeout).await {
                Ok(Some(name)) => return Ok(Some(name)),
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(%error, "container name lookup failed");
                    failure.get_or_insert(error);
                }
            }
        }
        let dirs = self.bundle_dirs.clone();
        let owned = id.to_string();
        let bundle = tokio::task::spawn_blocking(move || {
            dirs.iter().find_map(|dir| read_bundle(dir, &owned))
        })
        .await
        .ok()
        .flatten();
        for socket in &self.cri_sockets {
            if !socket.exists() {
                continue;
            }
            match query_cri(socket, id, self.timeout).await {
                Ok(Some(mut name)) => {
                    name.init_pid = bundle.as_ref().and_then(|bundle| bundle.init_pid);
                    return Ok(Some(name));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(%error, "container name lookup failed");
                    failure.get_or_insert(error);
                }
            }
        }
        match (bundle, failure) {
            (Some(name), _) => Ok(Some(name)),
            (None, Some(error)) => Err(error),
            (None, None) => Ok(None),
        }
    }
}

/// Container ids (64 hex digits: the runtimes an API or a bundle can name) the model's
/// cgroups show (a few hundred entries to walk, not every process).
pub fn container_ids(model: &Model) -> HashSet<String> {
    model
        .cgroups()
        .filter_map(|cgroup| match &cgroup.class {
            Classification::Container { id, .. }
                if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Some(id.clone())
            }
            _ => None,
        })
        .collect()
}

/// The lookup task: every [`POLL`], names the containers the model shows that the
/// table does not know (at most [`BATCH`] a round; an id nobody could name is asked
/// again after [`RETRY`]), and forgets those gone. Stops when `stop` turns true.
/// `present` says which container ids the model shows now (see [`container_ids`]);
/// `None` ends the task.
pub async fn run(
    names: Arc<Names>,
    present: impl Fn() -> Option<HashSet<String>> + Send + 'static,
    lookup: Lookup,
    mut stop: watch::Receiver<bool>,
) {
    let mut unnamed: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let Some(present) = present() else {
            return;
        };
        let now = Instant::now();
        unnamed.retain(|id, since| present.contains(id) && now.duration_since(*since) < RETRY);
        let table = names.current();
        let wanted: Vec<String> = present
            .iter()
            .filter(|id| table.get(id).is_none() && !unnamed.contains_key(*id))
            .take(BATCH)
            .cloned()
            .collect();
        for id in wanted {
            match lookup.name_of(&id).await {
                Ok(Some(name)) => {
                    names.lookups.found.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(id, name = %name.name, "named a container");
                    names.update(|table| table.insert(id, name));
                }
                Ok(None) => {
                    names.lookups.unknown.fetch_add(1, Ordering::Relaxed);
                    unnamed.insert(id, now);
                }
                Err(error) => {
                    names.lookups.error.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(id, %error, "cannot look up a container's name");
                    unnamed.insert(id, now);
                }
            }
        }
        names.update(|table| table.retain(&present));
    }
}

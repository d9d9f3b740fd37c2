//! The one model both sources feed and policy, trends and outputs read: processes keyed
//! by identity (pid + start time), cgroups keyed by path, OOM kills, host memory.

mod cgroup;
mod oom;
mod process;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
};

use serde::Serialize;

pub use cgroup::{Cgroup, CgroupStats, Limit, Pressure};
pub use oom::{OomEvent, OomOrigin, OomScope};
pub use process::{Cmdline, MemoryUsage, Process, ProcessKey};

/// How many OOM events the model keeps for the API.
pub const OOM_HISTORY: usize = 256;

/// Host-wide memory from `/proc/meminfo` and `/proc/pressure/memory`.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct HostMemory {
    pub total: u64,
    pub available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    pub pressure: Option<Pressure>,
}

/// The table. Entries are shared (`Arc`): cloning the model for a published snapshot
/// copies the indexes, never a process, cgroup or event; changing one entry afterwards
/// copies that entry alone.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Keyed by pid alone (a pid holds one process at a time); lookups by
    /// [`ProcessKey`] check the start time. One index instead of a second pid-to-key
    /// map: each copy of the model costs 16 bytes a slot, not 40.
    processes: HashMap<i32, Arc<Process>>,
    cgroups: BTreeMap<String, Arc<Cgroup>>,
    oom_events: VecDeque<Arc<OomEvent>>,
    oom_total: BTreeMap<&'static str, u64>,
    pub host: HostMemory,
}

impl Model {
    /// Inserts or refreshes a process. A different process under the same pid (PID reuse)
    /// replaces the old one, which is gone.
    pub fn upsert_process(&mut self, process: Process) {
        self.insert_shared(Arc::new(process));
    }

    /// Replaces the whole process set with a full scan's result: processes missing from
    /// it have exited.
    /// Takes processes or shared ones: a process a scan found unchanged stays the one the
    /// published snapshot holds, not a copy.
    pub fn replace_processes<P: Into<Arc<Process>>>(&mut self, processes: Vec<P>) {
        self.processes = index(processes);
    }

    /// This model with `processes` as its process set (as [`Model::replace_processes`]),
    /// built without copying the index it replaces: what a full scan does while a
    /// published snapshot still shares the model.
    pub fn with_processes<P: Into<Arc<Process>>>(&self, processes: Vec<P>) -> Model {
        Model {
            processes: index(processes),
            cgroups: self.cgroups.clone(),
            oom_events: self.oom_events.clone(),
            oom_total: self.oom_total.clone(),
            host: self.host,
        }
    }

    fn insert_shared(&mut self, process: Arc<Process>) {
        self.processes.insert(process.key.pid, process);
    }

    /// The process under `key` as the model shares it (with published snapshots).
    pub fn shared_process(&self, key: &ProcessKey) -> Option<&Arc<Process>> {
        self.processes
            .get(&key.pid)
            .filter(|process| process.key == *key)
    }

    /// Forgets a process that exited.
    pub fn remove_pid(&mut self, pid: i32) -> Option<Arc<Process>> {
        self.processes.remove(&pid)
    }

    pub fn process(&self, key: &ProcessKey) -> Option<&Process> {
        self.shared_process(key).map(|process| &**process)
    }

    /// The process to change (copied first when a published snapshot still shares it).
    pub fn process_mut(&mut self, key: &ProcessKey) -> Option<&mut Process> {
        self.processes
            .get_mut(&key.pid)
            .filter(|process| process.key == *key)
            .map(Arc::make_mut)
    }

    /// The process currently holding `pid`, if the model has it.
    pub fn process_by_pid(&self, pid: i32) -> Option<&Process> {
        self.processes.get(&pid).map(|process| &**process)
    }

    pub fn process_by_pid_mut(&mut self, pid: i32) -> Option<&mut Process> {
        self.processes.get_mut(&pid).map(Arc::make_mut)
    }

    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.processes.values().map(|process| &**process)
    }

    pub fn process_count(&self) -> usize {
        self.processes.len()
    }

    /// Replaces the cgroup set with a fresh read: cgroups missing from it are gone.
    pub fn replace_cgroups(&mut self, cgroups: Vec<Cgroup>) {
        self.cgroups = cgroups
            .into_iter()
            .map(|cgroup| (cgroup.path.clone(), Arc::new(cgroup)))
            .collect();
    }

    pub fn cgroup(&self, path: &str) -> Option<&Cgroup> {
        self.cgroups.get(path).map(|cgroup| &**cgroup)
    }

    pub fn cgroups(&self) -> impl Iterator<Item = &Cgroup> {
        self.cgroups.values().map(|cgroup| &**cgroup)
    }

    /// Records an OOM kill, keeping the newest [`OOM_HISTORY`].
    pub fn record_oom(&mut self, event: OomEvent) {
        *self.oom_total.entry(event.scope.as_str()).or_default() += 1;
        if self.oom_events.len() == OOM_HISTORY {
            self.oom_events.pop_front();
        }
        self.oom_events.push_back(Arc::new(event));
    }

    /// OOM kills seen, oldest first.
    pub fn oom_events(&self) -> impl Iterator<Item = &OomEvent> {
        self.oom_events.iter().map(|event| &**event)
    }

    /// OOM kills seen since start, by scope ("cgroup", "host").
    pub fn oom_totals(&self) -> &BTreeMap<&'static str, u64> {
        &self.oom_total
    }
}

/// The pid index of `processes`.
fn index<P: Into<Arc<Process>>>(processes: Vec<P>) -> HashMap<i32, Arc<Process>> {
    let mut index = HashMap::with_capacity(processes.len());
    for process in processes {
        let process = process.into();
        index.insert(process.key.pid, process);
    }
    index
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

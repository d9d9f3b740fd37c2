//! OOM kills from cgroup counters: what changed between two reads of every cgroup.
//!
//! In procfs mode this is how OOM kills are seen at all; in eBPF mode it tells a
//! cgroup-limit OOM from a host-wide one. Counters differ by version: v2's
//! `memory.events` counts `oom` (the limit was hit and the killer ran) and `oom_kill`
//! hierarchically, in the cgroup and every ancestor below the root (unless mounted with
//! `memory_localevents`); v1's `memory.oom_control` counts `oom_kill` only in the
//! victim's own cgroup and has no `oom` count. Kills are reported once, at the deepest
//! cgroup that counted them (on v2, by subtracting what its children counted).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::model::{Cgroup, Limit, OomScope};

use super::Hierarchy;

/// New OOM kills counted in one cgroup since the last update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OomCounterChange {
    /// The deepest cgroup that counted the kills: the victims' cgroup (or, if that was
    /// removed meanwhile, its nearest remaining ancestor).
    pub path: String,
    pub kills: u64,
    /// `Cgroup` when a cgroup's limit ran the OOM killer, `Host` for a host-wide OOM.
    pub scope: OomScope,
    /// The cgroup whose limit was hit, for `Cgroup` scope: on v2 the deepest cgroup on
    /// the victims' path whose `oom` count went up; on v1, which cannot tell, the nearest
    /// cgroup on that path with a limit.
    pub limit_cgroup: Option<String>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    oom: u64,
    oom_kill: u64,
}

/// Remembers the OOM counters of every cgroup between reads.
#[derive(Debug)]
pub struct OomWatch {
    hierarchy: Hierarchy,
    seen: HashMap<String, Counters>,
    seeded: bool,
}

impl OomWatch {
    /// A watch for cgroups read from a hierarchy of this version
    /// ([`super::CgroupReader::hierarchy`]).
    pub fn new(hierarchy: Hierarchy) -> Self {
        OomWatch {
            hierarchy,
            seen: HashMap::new(),
            seeded: false,
        }
    }

    /// Compares `cgroups` (a full [`super::CgroupReader::read_all`]) with the previous
    /// update and returns the new kills, sorted by path. The first update only seeds.
    /// A cgroup first seen after that reports the kills it counted since it was created;
    /// one whose counters went down was recreated and counts from zero.
    pub fn update(&mut self, cgroups: &[Cgroup]) -> Vec<OomCounterChange> {
        let mut delta: BTreeMap<&str, Counters> = BTreeMap::new();
        for cgroup in cgroups {
            let now = counters(cgroup);
            let change = match self.seen.get(&cgroup.path) {
                Some(before) => Counters {
                    oom: since(now.oom, before.oom),
                    oom_kill: since(now.oom_kill, before.oom_kill),
                },
                None if self.seeded => now,
                None => Counters::default(),
            };
            delta.insert(&cgroup.path, change);
        }
        let seeding = !self.seeded;
        self.seeded = true;
        self.seen = cgroups
            .iter()
            .map(|cgroup| (cgroup.path.clone(), counters(cgroup)))
            .collect();
        if seeding {
            return Vec::new();
        }

        // v2 counts a kill in every ancestor too: take what the children counted off.
        let mut counted_by_children: HashMap<&str, u64> = HashMap::new();
        if self.hierarchy == Hierarchy::V2 {
            for (path, change) in &delta {
                if let Some(parent) = parent(path) {
                    *counted_by_children.entry(parent).or_default() += change.oom_kill;
                }
            }
        }
        let limits: HashMap<&str, Limit> = cgroups
            .iter()
            .map(|cgroup| (cgroup.path.as_str(), cgroup.stats.limit))
            .collect();
        delta
            .iter()
            .filter_map(|(path, change)| {
                let children = counted_by_children.get(path).copied().unwrap_or(0);
                let kills = change.oom_kill.saturating_sub(children);
                (kills > 0).then(|| {
                    let limit_cgroup = self.limit_cgroup(path, &delta, &limits);
                    OomCounterChange {
                        path: (*path).to_string(),
                        kills,
                        scope: if limit_cgroup.is_some() {
                            OomScope::Cgroup
                        } else {
                            OomScope::Host
                        },
                        limit_cgroup,
                    }
                })
            })
            .collect()
    }

    /// The cgroup whose limit ran the killer for victims in `path`, if any.
    fn limit_cgroup(
        &self,
        path: &str,
        delta: &BTreeMap<&str, Counters>,
        limits: &HashMap<&str, Limit>,
    ) -> Option<String> {
        let mut at = Some(path);
        while let Some(current) = at {
            let hit = match self.hierarchy {
                Hierarchy::V2 => delta.get(current).is_some_and(|change| change.oom > 0),
                Hierarchy::V1 => matches!(limits.get(current), Some(Limit::Bytes(_))),
            };
            if hit {
                return Some(current.to_string());
            }
            at = parent(current);
        }
        None
    }
}

fn counters(cgroup: &Cgroup) -> Counters {
    Counters {
        oom: cgroup.stats.oom,
        oom_kill: cgroup.stats.oom_kill,
    }
}

/// The increase of a counter; a counter that went down belongs to a recreated cgroup.
fn since(now: u64, before: u64) -> u64 {
    if now >= before { now - before } else { now }
}

/// "/a/b" -> "/a", "/a" -> "/", "/" -> none.
fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(at) => Some(&path[..at]),
        None => None,
    }
}

#[cfg(test)]
mod tests;

//! procfs mode's OOM events: cgroup counter changes joined with the victims the kernel
//! logged, so an OOM kill is reported once, with its victim when the log named one.
//!
//! The kernel counts a kill (`oom_kill`) just before it logs the victim, and the two are
//! read at different moments of a tick, so either may arrive a tick before the other:
//! a counted kill waits one tick for its victim, a logged victim two for its count.
//! What stays unmatched is reported on its own (a count without a victim, or a victim
//! whose cgroup counted nothing the guardian saw).

use crate::model::{OomEvent, OomOrigin};

use super::{cgroup::OomCounterChange, kmsg::LoggedVictim};

/// Ticks a counted kill waits for its logged victim.
const KILL_WAIT_TICKS: u8 = 1;
/// Ticks a logged victim waits for its count.
const VICTIM_WAIT_TICKS: u8 = 2;

/// One counted kill (a change of `kills` is that many).
#[derive(Clone, Debug)]
struct CountedKill {
    change: OomCounterChange,
    age: u8,
}

#[derive(Clone, Debug)]
struct PendingVictim {
    victim: LoggedVictim,
    age: u8,
}

/// Pairs counted kills with logged victims across ticks.
#[derive(Debug, Default)]
pub struct OomJoin {
    kills: Vec<CountedKill>,
    victims: Vec<PendingVictim>,
}

impl OomJoin {
    /// This tick's counter changes and logged victims in, OOM events out. With
    /// `log_readable` false no victim can come, so counted kills are reported at once.
    pub fn join(
        &mut self,
        changes: Vec<OomCounterChange>,
        victims: Vec<LoggedVictim>,
        log_readable: bool,
    ) -> Vec<OomEvent> {
        for change in changes {
            for _ in 0..change.kills {
                self.kills.push(CountedKill {
                    change: OomCounterChange {
                        kills: 1,
                        ..change.clone()
                    },
                    age: 0,
                });
            }
        }
        self.victims.extend(
            victims
                .into_iter()
                .map(|victim| PendingVictim { victim, age: 0 }),
        );

        let mut events = Vec::new();
        let mut kills = std::mem::take(&mut self.kills);
        kills.retain_mut(|kill| {
            if let Some(at) = self
                .victims
                .iter()
                .position(|pending| belongs(&pending.victim, &kill.change))
            {
                let victim = self.victims.remove(at).victim;
                events.push(victim_event(&victim, Some(&kill.change.path)));
                return false;
            }
            if !log_readable || kill.age >= KILL_WAIT_TICKS {
                events.push(count_event(&kill.change));
                return false;
            }
            kill.age += 1;
            true
        });
        self.kills = kills;
        self.victims.retain_mut(|pending| {
            if pending.age >= VICTIM_WAIT_TICKS {
                events.push(victim_event(
                    &pending.victim,
                    pending.victim.task_memcg.as_deref(),
                ));
                return false;
            }
            pending.age += 1;
            true
        });
        events
    }
}

/// Whether `victim` is the kill `change` counted: its memory cgroup is the counting one
/// (or below it, when the victim's own cgroup was removed meanwhile); a victim logged
/// without its cgroup (the `oom-kill:` line is rate limited) matches by scope.
fn belongs(victim: &LoggedVictim, change: &OomCounterChange) -> bool {
    match &victim.task_memcg {
        Some(memcg) => {
            memcg == &change.path
                || change.path == "/"
                || memcg
                    .strip_prefix(change.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        }
        None => victim.scope == change.scope,
    }
}

fn victim_event(victim: &LoggedVictim, cgroup: Option<&str>) -> OomEvent {
    OomEvent {
        pid: Some(victim.pid),
        comm: Some(victim.comm.clone()),
        uid: victim.uid,
        cgroup: cgroup.map(str::to_owned),
        scope: victim.scope,
        anon_rss_bytes: victim.anon_rss_bytes,
        file_rss_bytes: victim.file_rss_bytes,
        shmem_rss_bytes: victim.shmem_rss_bytes,
        oom_score_adj: victim.oom_score_adj,
        origin: OomOrigin::KernelLog,
        ..OomEvent::now(victim.scope, OomOrigin::KernelLog)
    }
}

fn count_event(change: &OomCounterChange) -> OomEvent {
    OomEvent {
        cgroup: Some(change.path.clone()),
        ..OomEvent::now(change.scope, OomOrigin::CgroupCounter)
    }
}

#[cfg(test)]
mod tests;

//! The guardian's own memory cgroup: when the room left under its limit (or an
//! ancestor's: a unit's `MemoryMax`, a slice's) gets small, the next allocation may get
//! the guardian OOM-killed, and a dead guardian protects nothing. Said in the log while it
//! can still be said, once per squeeze, naming the cgroup, its usage and its limit.

use crate::model::Model;

/// Below this much room under the tightest limit the guardian warns: a scrape of
/// thousands of processes or a burst of new ones allocates a few MiB at once.
pub const WARN_BELOW_BYTES: u64 = 16 << 20;

/// The tightest limit above the guardian's own process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Squeeze {
    pub cgroup: String,
    pub usage: u64,
    pub limit: u64,
}

impl Squeeze {
    pub fn headroom(&self) -> u64 {
        self.limit.saturating_sub(self.usage)
    }
}

/// Warns once when the headroom falls below [`WARN_BELOW_BYTES`]; again only after it
/// recovered to twice that.
#[derive(Debug, Default)]
pub struct OwnHeadroom {
    warned: bool,
}

impl OwnHeadroom {
    /// Looks at `pid`'s memory cgroup and its ancestors in `model`.
    pub fn check(&mut self, model: &Model, pid: i32) {
        let Some(squeeze) = tightest(model, pid) else {
            return;
        };
        let headroom = squeeze.headroom();
        if headroom < WARN_BELOW_BYTES && !self.warned {
            self.warned = true;
            tracing::warn!(
                cgroup = %squeeze.cgroup,
                usage_bytes = squeeze.usage,
                limit_bytes = squeeze.limit,
                headroom_bytes = headroom,
                "the guardian's own memory cgroup is nearly full: its next allocations may get \
                 the guardian OOM-killed; raise the limit (MemoryMax of its unit or slice) or \
                 move it to a cgroup with room"
            );
        } else if headroom >= 2 * WARN_BELOW_BYTES && self.warned {
            self.warned = false;
            tracing::info!(
                cgroup = %squeeze.cgroup,
                headroom_bytes = headroom,
                "the guardian's own memory cgroup has room again"
            );
        }
    }
}

/// The limited cgroup with the least room among `pid`'s memory cgroup and its ancestors.
pub fn tightest(model: &Model, pid: i32) -> Option<Squeeze> {
    let own = model.process_by_pid(pid)?.memory_cgroup.clone()?;
    let mut path = &*own;
    let mut best: Option<Squeeze> = None;
    loop {
        if let Some(cgroup) = model.cgroup(path)
            && let Some(limit) = cgroup.stats.limit.bytes()
        {
            let squeeze = Squeeze {
                cgroup: path.to_string(),
                usage: cgroup.stats.usage,
                limit,
            };
            if best
                .as_ref()
                .is_none_or(|best| squeeze.headroom() < best.headroom())
            {
                best = Some(squeeze);
            }
        }
        match path.rsplit_once('/') {
            Some(("", "")) | None => break,
            Some(("", _)) => path = "/",
            Some((parent, _)) => path = parent,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        classify::Classification,
        model::{Cgroup, CgroupStats, Limit},
        test_support::process,
    };

    const MIB: u64 = 1 << 20;

    fn cgroup(path: &str, usage: u64, limit: Option<u64>) -> Cgroup {
        Cgroup {
            path: path.into(),
            stats: CgroupStats {
                usage,
                limit: limit.map_or(Limit::Max, Limit::Bytes),
                ..CgroupStats::default()
            },
            class: Classification::default(),
        }
    }

    fn model(own: &str, cgroups: Vec<Cgroup>) -> Model {
        let mut model = Model::default();
        let mut guardian = process(42, 1, 20 * MIB);
        guardian.memory_cgroup = Some(own.into());
        model.upsert_process(guardian);
        model.replace_cgroups(cgroups);
        model
    }

    #[test]
    fn the_tightest_limit_among_ancestors_wins() {
        let model = model(
            "/system.slice/guardian.service",
            vec![
                cgroup("/system.slice/guardian.service", 20 * MIB, Some(100 * MIB)),
                cgroup("/system.slice", 900 * MIB, Some(910 * MIB)),
                cgroup("/", 5000 * MIB, None),
            ],
        );
        let squeeze = tightest(&model, 42).expect("a limit");
        assert_eq!(squeeze.cgroup, "/system.slice");
        assert_eq!(squeeze.headroom(), 10 * MIB);
        assert_eq!(tightest(&model, 7), None, "an unknown pid");
    }

    #[test]
    fn no_limit_no_squeeze() {
        let model = model("/", vec![cgroup("/", 5000 * MIB, None)]);
        assert_eq!(tightest(&model, 42), None);
    }

    #[test]
    fn warns_once_per_squeeze() {
        let mut headroom = OwnHeadroom::default();
        let tight = model("/g", vec![cgroup("/g", 20 * MIB, Some(24 * MIB))]);
        headroom.check(&tight, 42);
        assert!(headroom.warned);
        let roomy = model("/g", vec![cgroup("/g", 20 * MIB, Some(200 * MIB))]);
        headroom.check(&roomy, 42);
        assert!(!headroom.warned, "re-armed once there is room again");
    }
}

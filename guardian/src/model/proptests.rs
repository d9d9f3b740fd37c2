//! The model against a plain map, over arbitrary sequences of what the sources do to it
//! (events upsert and remove, scans replace, pids are reused): one process per pid, the
//! newest wins, every index agrees, and a snapshot taken earlier never changes.

use std::collections::HashMap;

use proptest::prelude::*;

use super::Model;
use crate::test_support::process;

#[derive(Clone, Debug)]
enum Op {
    /// A process seen (event or scan): pid, start time, RSS.
    Upsert(i32, u64, u64),
    /// An exit.
    Remove(i32),
    /// An RSS change through the mutable accessor.
    Grow(i32, u64),
    /// A full scan's result.
    Replace(Vec<(i32, u64, u64)>),
    /// A published snapshot.
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    // Few pids and start times, so reuse and repeats are common.
    let seen = (1i32..16, 0u64..4, 0u64..1 << 30);
    prop_oneof![
        4 => seen.clone().prop_map(|(pid, start, rss)| Op::Upsert(pid, start, rss)),
        2 => (1i32..16).prop_map(Op::Remove),
        2 => (1i32..16, 0u64..1 << 30).prop_map(|(pid, rss)| Op::Grow(pid, rss)),
        1 => prop::collection::vec(seen, 0..12).prop_map(Op::Replace),
        1 => Just(Op::Snapshot),
    ]
}

/// pid -> (start time, RSS), as the model should hold it.
type Reference = HashMap<i32, (u64, u64)>;

fn view(model: &Model) -> Reference {
    model
        .processes()
        .map(|p| (p.key.pid, (p.key.start_ticks, p.memory.rss)))
        .collect()
}

proptest! {
    #[test]
    fn the_model_matches_a_plain_map_and_snapshots_stay_put(ops in prop::collection::vec(op(), 1..80)) {
        let mut model = Model::default();
        let mut reference = Reference::new();
        let mut snapshots: Vec<(Model, Reference)> = Vec::new();
        for op in ops {
            match op {
                Op::Upsert(pid, start, rss) => {
                    model.upsert_process(process(pid, start, rss));
                    reference.insert(pid, (start, rss));
                }
                Op::Remove(pid) => {
                    let removed = model.remove_pid(pid).map(|p| p.key.start_ticks);
                    prop_assert_eq!(removed, reference.remove(&pid).map(|(start, _)| start));
                }
                Op::Grow(pid, rss) => {
                    if let Some(p) = model.process_by_pid_mut(pid) {
                        p.memory = crate::model::MemoryUsage::from_parts(rss, 0, 0, 0);
                    }
                    if let Some(entry) = reference.get_mut(&pid) {
                        entry.1 = rss;
                    }
                }
                Op::Replace(seen) => {
                    model.replace_processes(
                        seen.iter().map(|&(pid, start, rss)| process(pid, start, rss)).collect(),
                    );
                    reference = seen.iter().map(|&(pid, start, rss)| (pid, (start, rss))).collect();
                }
                Op::Snapshot => snapshots.push((model.clone(), reference.clone())),
            }
            prop_assert_eq!(model.process_count(), reference.len());
            prop_assert_eq!(view(&model), reference.clone());
            for (&pid, &(start, _)) in &reference {
                let found = model.process_by_pid(pid).map(|p| p.key.start_ticks);
                prop_assert_eq!(found, Some(start));
                let key = crate::model::ProcessKey { pid, start_ticks: start };
                prop_assert!(model.process(&key).is_some());
            }
        }
        for (snapshot, expected) in &snapshots {
            prop_assert_eq!(view(snapshot), expected.clone(), "a published snapshot changed");
        }
    }
}

use super::*;
use crate::model::OomScope;

fn change(path: &str, kills: u64) -> OomCounterChange {
    OomCounterChange {
        path: path.into(),
        kills,
        scope: OomScope::Cgroup,
        limit_cgroup: Some(path.into()),
    }
}

fn victim(pid: i32, memcg: Option<&str>) -> LoggedVictim {
    LoggedVictim {
        pid,
        comm: "memhog".into(),
        uid: Some(0),
        scope: OomScope::Cgroup,
        task_memcg: memcg.map(str::to_owned),
        oom_memcg: memcg.map(str::to_owned),
        constraint: Some("CONSTRAINT_MEMCG".into()),
        anon_rss_bytes: Some(1 << 20),
        file_rss_bytes: None,
        shmem_rss_bytes: None,
        oom_score_adj: Some(0),
        logged_us: 1,
    }
}

#[test]
fn a_count_and_its_victim_in_one_tick_are_one_event() {
    let mut join = OomJoin::default();
    let events = join.join(vec![change("/a", 1)], vec![victim(7, Some("/a"))], true);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].pid, Some(7));
    assert_eq!(events[0].cgroup.as_deref(), Some("/a"));
    assert_eq!(events[0].origin, OomOrigin::KernelLog);
    assert!(join.join(vec![], vec![], true).is_empty());
    assert!(join.join(vec![], vec![], true).is_empty());
}

#[test]
fn a_victim_logged_a_tick_late_still_joins_its_count() {
    let mut join = OomJoin::default();
    assert!(join.join(vec![change("/a", 1)], vec![], true).is_empty());
    let events = join.join(vec![], vec![victim(7, Some("/a"))], true);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].pid, Some(7));
}

#[test]
fn a_count_a_tick_late_still_joins_its_victim() {
    let mut join = OomJoin::default();
    assert!(
        join.join(vec![], vec![victim(7, Some("/a/b"))], true)
            .is_empty()
    );
    // Counted at the parent: the victim's own cgroup was removed meanwhile.
    let events = join.join(vec![change("/a", 1)], vec![], true);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].pid, Some(7));
    assert_eq!(events[0].cgroup.as_deref(), Some("/a"));
}

#[test]
fn unmatched_counts_and_victims_are_reported_once_each() {
    let mut join = OomJoin::default();
    let mut events = join.join(
        vec![change("/a", 2)],
        vec![victim(7, Some("/elsewhere"))],
        true,
    );
    for _ in 0..4 {
        events.extend(join.join(vec![], vec![], true));
    }
    assert_eq!(events.len(), 3, "{events:?}");
    let bare = events
        .iter()
        .filter(|event| event.origin == OomOrigin::CgroupCounter)
        .count();
    assert_eq!(bare, 2);
    let logged: Vec<_> = events.iter().filter(|event| event.pid == Some(7)).collect();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].cgroup.as_deref(), Some("/elsewhere"));
}

#[test]
fn a_sibling_with_a_common_prefix_is_not_a_match() {
    let mut join = OomJoin::default();
    join.join(vec![change("/a", 1)], vec![victim(7, Some("/ab"))], true);
    let events: Vec<_> = (0..3)
        .flat_map(|_| join.join(vec![], vec![], true))
        .collect();
    assert!(
        events
            .iter()
            .all(|event| event.pid.is_none() || event.cgroup.as_deref() == Some("/ab"))
    );
}

#[test]
fn without_the_log_counts_are_reported_at_once() {
    let mut join = OomJoin::default();
    let events = join.join(vec![change("/a", 3)], vec![], false);
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|event| event.pid.is_none()));
}

#[test]
fn a_victim_without_its_cgroup_joins_a_count_of_its_scope() {
    let mut join = OomJoin::default();
    let events = join.join(vec![change("/a", 1)], vec![victim(7, None)], true);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].pid, Some(7));
    assert_eq!(events[0].cgroup.as_deref(), Some("/a"));
}

use super::*;
use crate::{classify::Classification, model::CgroupStats};

fn cg(path: &str, limit: Option<u64>, oom: u64, oom_kill: u64) -> Cgroup {
    Cgroup {
        path: path.to_string(),
        stats: CgroupStats {
            limit: limit.map_or(Limit::Max, Limit::Bytes),
            oom,
            oom_kill,
            ..CgroupStats::default()
        },
        class: Classification::Unknown,
    }
}

#[test]
fn first_update_only_seeds() {
    let mut watch = OomWatch::new(Hierarchy::V2);
    assert!(
        watch
            .update(&[cg("/", None, 0, 0), cg("/a", Some(1), 3, 3)])
            .is_empty()
    );
    assert!(
        watch
            .update(&[cg("/", None, 0, 0), cg("/a", Some(1), 3, 3)])
            .is_empty()
    );
}

#[test]
fn v2_hierarchical_kill_is_reported_once_at_the_deepest_cgroup_with_cgroup_scope() {
    let mut watch = OomWatch::new(Hierarchy::V2);
    let before = [
        cg("/", None, 0, 0),
        cg("/k", None, 0, 0),
        cg("/k/pod", Some(64), 0, 0),
        cg("/k/pod/c", None, 0, 0),
    ];
    watch.update(&before);
    // The pod's limit was hit; the victim lives in /k/pod/c. v2 counts `oom` at the pod
    // and above, `oom_kill` at the container and above.
    let after = [
        cg("/", None, 0, 0),
        cg("/k", None, 1, 1),
        cg("/k/pod", Some(64), 1, 1),
        cg("/k/pod/c", None, 0, 1),
    ];
    assert_eq!(
        watch.update(&after),
        vec![OomCounterChange {
            path: "/k/pod/c".into(),
            kills: 1,
            scope: OomScope::Cgroup,
            limit_cgroup: Some("/k/pod".into()),
        }]
    );
    assert!(watch.update(&after).is_empty());
}

#[test]
fn v2_kill_without_any_oom_count_is_host_wide_even_under_a_limit() {
    let mut watch = OomWatch::new(Hierarchy::V2);
    watch.update(&[cg("/", None, 0, 0), cg("/s", Some(1 << 30), 0, 0)]);
    let changes = watch.update(&[cg("/", None, 0, 0), cg("/s", Some(1 << 30), 0, 2)]);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].scope, OomScope::Host);
    assert_eq!(changes[0].kills, 2);
    assert_eq!(changes[0].limit_cgroup, None);
}

#[test]
fn v1_scope_comes_from_the_nearest_limit() {
    let mut watch = OomWatch::new(Hierarchy::V1);
    let seed = [
        cg("/", None, 0, 0),
        cg("/t", Some(50 << 20), 0, 0),
        cg("/free", None, 0, 0),
    ];
    watch.update(&seed);
    // v1 counts only in the victim's own cgroup.
    let changes = watch.update(&[
        cg("/", None, 0, 1),
        cg("/t", Some(50 << 20), 0, 1),
        cg("/free", None, 0, 0),
    ]);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(
        (changes[0].path.as_str(), changes[0].scope),
        ("/", OomScope::Host)
    );
    assert_eq!(
        (changes[1].path.as_str(), changes[1].scope),
        ("/t", OomScope::Cgroup)
    );
    assert_eq!(changes[1].limit_cgroup.as_deref(), Some("/t"));
}

#[test]
fn new_and_recreated_cgroups_count_from_zero_and_removed_children_fall_to_the_parent() {
    let mut watch = OomWatch::new(Hierarchy::V2);
    watch.update(&[
        cg("/", None, 0, 0),
        cg("/a", Some(1), 5, 5),
        cg("/b", Some(1), 0, 0),
        cg("/b/x", None, 0, 0),
    ]);
    let changes = watch.update(&[
        cg("/", None, 0, 0),
        cg("/a", Some(1), 1, 1), // recreated: went down
        cg("/b", Some(1), 1, 1), // /b/x was removed after its kill
        cg("/n", Some(1), 1, 1), // new since the last update
    ]);
    let paths: Vec<_> = changes.iter().map(|c| (c.path.as_str(), c.kills)).collect();
    assert_eq!(paths, vec![("/a", 1), ("/b", 1), ("/n", 1)]);
}

#[test]
fn parents_of_paths() {
    assert_eq!(parent("/"), None);
    assert_eq!(parent("/a"), Some("/"));
    assert_eq!(parent("/a/b"), Some("/a"));
}

use super::*;
use crate::test_support::process;

#[test]
fn reused_pid_replaces_the_old_process_and_never_merges() {
    let mut model = Model::default();
    model.upsert_process(process(42, 100, 10));
    model.upsert_process(process(42, 200, 20));
    assert_eq!(model.process_count(), 1);
    assert!(
        model
            .process(&ProcessKey {
                pid: 42,
                start_ticks: 100
            })
            .is_none()
    );
    assert_eq!(model.process_by_pid(42).map(|p| p.memory.rss), Some(20));
}

#[test]
fn full_scan_drops_exited_processes() {
    let mut model = Model::default();
    model.upsert_process(process(1, 1, 1));
    model.upsert_process(process(2, 1, 1));
    model.replace_processes(vec![process(2, 1, 5)]);
    assert!(model.process_by_pid(1).is_none());
    assert_eq!(model.process_by_pid(2).map(|p| p.memory.rss), Some(5));
}

#[test]
fn oom_history_is_bounded() {
    let mut model = Model::default();
    for pid in 0..(OOM_HISTORY as i32 + 10) {
        model.record_oom(OomEvent {
            time: String::new(),
            unix_time: 0.0,
            pid: Some(pid),
            comm: None,
            uid: None,
            cgroup: None,
            scope: OomScope::Cgroup,
            anon_rss_bytes: None,
            file_rss_bytes: None,
            shmem_rss_bytes: None,
            oom_score_adj: None,
            origin: OomOrigin::CgroupCounter,
            kernel_boot_ns: None,
        });
    }
    assert_eq!(model.oom_events().count(), OOM_HISTORY);
    assert_eq!(
        model.oom_totals().get("cgroup"),
        Some(&(OOM_HISTORY as u64 + 10))
    );
}

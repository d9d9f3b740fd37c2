use super::*;

const CONTEXT: &str = "6,1460,8915900093,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/guardian-test-oom-procfs-2253-15,task_memcg=/guardian-test-oom-procfs-2253-15,task=memhog,pid=2394,uid=0\n";
const KILLED: &str = "3,1461,8915900163,-;Memory cgroup out of memory: Killed process 2394 (memhog) total-vm:52192kB, anon-rss:48896kB, file-rss:1784kB, shmem-rss:0kB, UID:0 pgtables:144kB oom_score_adj:0\n";

#[test]
fn a_cgroup_kill_as_this_kernel_logs_it() {
    let mut parser = VictimParser::default();
    assert_eq!(parser.record(CONTEXT), None);
    let victim = parser.record(KILLED).expect("victim");
    assert_eq!(
        victim,
        LoggedVictim {
            pid: 2394,
            comm: "memhog".into(),
            uid: Some(0),
            scope: OomScope::Cgroup,
            task_memcg: Some("/guardian-test-oom-procfs-2253-15".into()),
            oom_memcg: Some("/guardian-test-oom-procfs-2253-15".into()),
            constraint: Some("CONSTRAINT_MEMCG".into()),
            anon_rss_bytes: Some(48896 * 1024),
            file_rss_bytes: Some(1784 * 1024),
            shmem_rss_bytes: Some(0),
            oom_score_adj: Some(0),
            logged_us: 8915900163,
        }
    );
}

#[test]
fn a_host_kill_with_its_context_rate_limited_away() {
    let mut parser = VictimParser::default();
    let victim = parser
        .line(
            "Out of memory: Killed process 77 (java) total-vm:9000kB, anon-rss:8000kB, file-rss:0kB, shmem-rss:12kB, UID:1000 pgtables:20kB oom_score_adj:-500",
            5,
        )
        .expect("victim");
    assert_eq!(victim.scope, OomScope::Host);
    assert_eq!(victim.uid, Some(1000));
    assert_eq!(victim.oom_score_adj, Some(-500));
    assert_eq!(victim.task_memcg, None);
    assert_eq!(victim.shmem_rss_bytes, Some(12 * 1024));
}

#[test]
fn a_context_for_another_pid_is_not_borrowed() {
    let mut parser = VictimParser::default();
    parser.record(CONTEXT);
    let victim = parser
        .line("Memory cgroup out of memory: Killed process 9 (x) total-vm:1kB, anon-rss:1kB, file-rss:1kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0", 1)
        .expect("victim");
    assert_eq!(victim.task_memcg, None);
}

#[test]
fn comms_and_cgroup_paths_with_separators_survive() {
    let mut parser = VictimParser::default();
    parser.line(
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kubepods.slice/a,b,task_memcg=/kubepods.slice/a,b/c d,task=x) y,pid=5,uid=0",
        1,
    );
    let victim = parser
        .line("Memory cgroup out of memory: Killed process 5 (x) total-vm:(y) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0", 2)
        .expect("victim");
    assert_eq!(victim.comm, "x) total-vm:(y");
    assert_eq!(
        victim.task_memcg.as_deref(),
        Some("/kubepods.slice/a,b/c d")
    );
    assert_eq!(victim.oom_memcg.as_deref(), Some("/kubepods.slice/a,b"));
    assert_eq!(victim.anon_rss_bytes, Some(2048));
}

#[test]
fn other_records_and_garbage_name_no_victim() {
    let mut parser = VictimParser::default();
    for record in [
        "6,1,2,-;memory: usage 32768kB, limit 32768kB, failcnt 67",
        "6,1,2,-;Tasks state (memory values in pages):",
        "no header at all",
        "6,1,x,-;Out of memory: Killed process 1 (a) total-vm:1kB",
        "3,1,2,-;Out of memory: Killed process nope (a) total-vm:1kB",
        "3,1,2,-;Out of memory: Killed process 1 (a",
        "",
    ] {
        assert_eq!(parser.record(record), None, "{record:?}");
    }
}

#[test]
fn arbitrary_text_never_panics() {
    let mut parser = VictimParser::default();
    let pieces = [
        "oom-kill:",
        "Out of memory: Killed process ",
        "Memory cgroup out of memory: Killed process ",
        "1",
        " (",
        ")",
        " total-vm:",
        "anon-rss:",
        "kB",
        ",",
        ";",
        "6,1,2,-;",
        "pid=",
        ",task_memcg=",
        "\u{1b}[2J",
        "\n",
    ];
    // Every ordered pair and triple of pieces: offsets at every boundary.
    for a in pieces {
        for b in pieces {
            for c in pieces {
                let text = format!("{a}{b}{c}");
                parser.line(&text, 0);
                parser.record(&text);
            }
        }
    }
}

#[test]
fn the_reader_starts_at_the_end_of_the_log() {
    // /dev/kmsg needs root (CAP_SYSLOG); elsewhere the error must name the path.
    match KmsgReader::open(Path::new("/dev/kmsg")) {
        Ok(mut reader) => {
            // History is skipped: whatever the boot logged is not reported now.
            let before = reader.lost();
            let _ = reader.drain();
            assert_eq!(reader.lost(), before);
        }
        Err(error) => assert!(error.to_string().contains("/dev/kmsg"), "{error}"),
    }
    let missing = KmsgReader::open(Path::new("/nonexistent/kmsg")).expect_err("missing");
    assert!(
        missing.to_string().contains("/nonexistent/kmsg"),
        "{missing}"
    );
}

use super::*;

fn stat_line(comm: &str, state: char, flags: u64) -> String {
    let mut fields = vec![
        "4242".to_string(),
        format!("({comm})"),
        state.to_string(),
        "1".into(),
    ];
    fields.extend(["4242", "4242", "0", "-1"].map(String::from));
    fields.push(flags.to_string());
    fields.extend((10..22).map(|n| n.to_string()));
    fields.push("987654".into()); // 22: start time
    fields.push("1000".into()); // 23: vsize
    fields.push("256".into()); // 24: rss pages
    fields.extend((25..=52).map(|_| "0".to_string()));
    fields.join(" ") + "\n"
}

#[test]
fn stat_comm_with_spaces_and_parentheses() {
    for comm in [
        "a) b",
        "(sd-pam)",
        "x",
        "two words",
        ") ) )",
        "((",
        "tab\there",
        "new\nline",
        "",
    ] {
        let line = stat_line(comm, 'S', 0x40_0000);
        let stat = stat(line.as_bytes()).unwrap_or_else(|| panic!("parse {comm:?}"));
        assert_eq!(stat.comm, comm.as_bytes(), "{comm:?}");
        assert_eq!(stat.state, b'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.start_ticks, 987_654);
        assert_eq!(stat.rss_pages, 256);
        assert!(!stat.kernel_thread());
    }
}

#[test]
fn stat_kernel_thread_and_zombie() {
    let kthread = stat_line("kworker/0:1-events", 'I', 0x0420_8060);
    assert!(stat(kthread.as_bytes()).is_some_and(|s| s.kernel_thread()));
    let zombie = stat_line("defunct", 'Z', 0x0040_808C);
    let zombie = stat(zombie.as_bytes()).expect("zombie");
    assert_eq!(zombie.state, b'Z');
    assert!(!zombie.kernel_thread());
}

#[test]
fn stat_rejects_truncated_and_garbage() {
    assert_eq!(stat(b""), None);
    assert_eq!(stat(b"12 (x) S 1 2 3"), None);
    assert_eq!(stat(b"12 x S 1"), None);
    let line = stat_line("x", 'S', 0).replace("987654", "98x654");
    assert_eq!(stat(line.as_bytes()), None);
}

#[test]
fn status_memory_and_uid() {
    let text = "Name:\ta) b\nUmask:\t0022\nState:\tS (sleeping)\nPPid:\t1\n\
                Uid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\n\
                VmRSS:\t   53248 kB\nRssAnon:\t   51200 kB\nRssFile:\t    2048 kB\n\
                RssShmem:\t       0 kB\nVmSwap:\t     512 kB\nThreads:\t1\n";
    let status = status(text.as_bytes()).expect("status");
    assert_eq!(status.uid, 1000);
    assert_eq!(
        status.memory,
        MemoryUsage {
            rss: 53248 * 1024,
            anon: 51200 * 1024,
            file: 2048 * 1024,
            shmem: 0,
            swap: 512 * 1024,
        }
    );
}

#[test]
fn status_without_mm_has_zero_memory() {
    let text =
        "Name:\tkthreadd\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\nKthread:\t1\nThreads:\t1\n";
    let parsed = status(text.as_bytes()).expect("status");
    assert_eq!(parsed.memory, MemoryUsage::default());
    assert_eq!(status(b"Name:\tx\n"), None, "no Uid line");
}

#[test]
fn cmdline_splits_on_nul() {
    assert_eq!(
        cmdline(b"node\0dist/main.js\0").to_vec(),
        vec!["node", "dist/main.js"]
    );
    assert_eq!(cmdline(b"a\0\0b\0").to_vec(), vec!["a", "", "b"]);
    assert_eq!(
        cmdline(b"sshd: /usr/sbin/sshd -D").to_vec(),
        vec!["sshd: /usr/sbin/sshd -D"]
    );
    assert!(cmdline(b"").is_empty());
    assert_eq!(cmdline(b"\xff\0").to_vec(), vec!["\u{fffd}"]);
}

#[test]
fn cgroup_lines_v1_v2() {
    let text = b"12:memory:/docker/abc\n4:cpu,cpuacct:/\n1:name=systemd:/a:b\n0::/x.scope\n";
    let lines = cgroup(text).expect("cgroup");
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0].controllers, vec!["memory"]);
    assert_eq!(lines[1].controllers, vec!["cpu", "cpuacct"]);
    assert_eq!(lines[2].path, "/a:b");
    assert_eq!((lines[3].hierarchy, lines[3].controllers.len()), (0, 0));
    assert_eq!(cgroup(b"garbage\n"), None);
}

#[test]
fn oom_score_adj_values() {
    assert_eq!(oom_score_adj(b"-1000\n"), Some(-1000));
    assert_eq!(oom_score_adj(b"300\n"), Some(300));
    assert_eq!(oom_score_adj(b"x"), None);
}

#[test]
fn meminfo_fields_and_fallback() {
    let text = b"MemTotal:  1000 kB\nMemFree:  200 kB\nMemAvailable:  500 kB\nSwapTotal: 10 kB\nSwapFree: 5 kB\n";
    assert_eq!(
        meminfo(text),
        Some(MemInfo {
            total: 1000 * 1024,
            available: 500 * 1024,
            swap_total: 10 * 1024,
            swap_free: 5 * 1024,
        })
    );
    let old = b"MemTotal:  1000 kB\nMemFree:  200 kB\n";
    assert_eq!(meminfo(old).map(|m| m.available), Some(200 * 1024));
    assert_eq!(meminfo(b"MemFree: 1 kB\n"), None);
}

#[test]
fn pressure_some_and_full() {
    let text = "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\nfull avg10=0.75 avg60=0.10 avg300=0.00 total=65432\n";
    let psi = pressure(text).expect("psi");
    assert_eq!(psi.some_avg10, 1.5);
    assert_eq!(psi.full_avg60, 0.1);
    assert_eq!((psi.some_total_us, psi.full_total_us), (123_456, 65_432));
    assert!(pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=3\n").is_some());
    assert_eq!(pressure(""), None);
    assert_eq!(pressure("some avg10=x\n"), None);
}

#[test]
fn integers() {
    assert_eq!(uint(b"0"), Some(0));
    assert_eq!(uint(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(uint(b"18446744073709551616"), None);
    assert_eq!(uint(b""), None);
    assert_eq!(int(b"-1"), Some(-1));
}

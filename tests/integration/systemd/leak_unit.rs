//! A leak rule on a systemd service's main process restarts the unit through systemd's
//! D-Bus API instead of signalling the process: in a machine booted with systemd-nspawn
//! (see `machine`), a service whose memhog grows 2 MiB/s (`Restart=on-failure`, which a
//! death by SIGTERM would not trigger) is restarted by the guardian before its limit;
//! `systemctl show` confirms the new main process and the unchanged policy, and the kill
//! log records the restart.

use std::{path::Path, time::Duration};

use super::{Machine, machine, require_tool};
use crate::common::{Needs, guardian_bin, marker, memhog_bin, require, wait_for};

const SERVICE: &str = "leaky.service";
const KILL_LOG: &str = "/var/lib/guardian-test/kills.jsonl";
/// The trend detector needs six 10 s minima; a loaded machine may take longer.
const TREND_TIMEOUT: Duration = Duration::from_secs(300);

fn show(machine: &Machine, property: &str) -> String {
    machine
        .ok(&["systemctl", "show", "-p", property, "--value", SERVICE])
        .trim()
        .to_string()
}

#[test]
fn leak_rule_restarts_a_leaking_service_through_systemd() {
    if !require(&[Needs::Root])
        || !require_tool("systemd-nspawn", "`apt-get install systemd-container`")
        || !require_tool("nsenter", "`apt-get install util-linux`")
    {
        return;
    }
    let Some(rootfs) = machine::rootfs() else {
        return;
    };
    let tag = marker("leak-unit");
    let machine = Machine::boot(&rootfs, &tag);
    machine.copy_in(Path::new(guardian_bin()), "/usr/local/bin/guardian");
    machine.copy_in(&memhog_bin(), "/usr/local/bin/memhog");
    machine.write(
        &format!("/etc/systemd/system/{SERVICE}"),
        &format!(
            "[Unit]\nDescription=a service that leaks (guardian test)\n\n[Service]\n\
             ExecStart=/usr/local/bin/memhog --rss 20 --grow 2 --max 600 --marker {tag}\n\
             Restart=on-failure\n"
        ),
    );
    machine.ok(&[
        "mkdir",
        "-p",
        "/etc/guardian-test",
        "/var/lib/guardian-test",
    ]);
    machine.write(
        "/etc/guardian-test/guardian.toml",
        &format!(
            "[daemon]\nscan_interval = \"200ms\"\nsource = \"procfs\"\n\n\
             [kill_log]\npath = \"{KILL_LOG}\"\n\n\
             [trends]\nmin_rss = \"1MiB\"\nwarmup = \"0s\"\n\n\
             [[leak_rule]]\nname = \"leaky-service\"\non = \"imminent\"\nwithin = \"24h\"\n\
             grace = \"5s\"\nmatch = {{ cmdline = '--marker {}( |$)' }}\n",
            regex::escape(&tag)
        ),
    );
    machine.ok(&["systemctl", "daemon-reload"]);
    machine.ok(&["systemctl", "start", SERVICE]);
    let first = show(&machine, "MainPID");
    let first_invocation = show(&machine, "InvocationID");
    println!(
        "{SERVICE} main pid {first}, cgroups:\n{}",
        machine.ok(&["cat", &format!("/proc/{first}/cgroup")])
    );
    machine.ok(&[
        "systemd-run",
        "--unit=guardian-test",
        "/usr/local/bin/guardian",
        "run",
        "--config",
        "/etc/guardian-test/guardian.toml",
    ]);
    let log = || {
        String::from_utf8_lossy(
            &machine
                .run(&[
                    "journalctl",
                    "-u",
                    "guardian-test",
                    "--no-pager",
                    "-n",
                    "80",
                ])
                .stdout,
        )
        .into_owned()
    };
    let restarted = wait_for(TREND_TIMEOUT, || {
        let invocation = show(&machine, "InvocationID");
        let pid = show(&machine, "MainPID");
        (invocation != first_invocation && pid != "0" && pid != first).then_some(pid)
    });
    let second = restarted.unwrap_or_else(|| panic!("{SERVICE} was never restarted\n{}", log()));
    println!("{SERVICE}: main pid {first} -> {second}");
    assert_eq!(show(&machine, "ActiveState"), "active");
    assert_eq!(show(&machine, "Restart"), "on-failure");
    let records = wait_for(Duration::from_secs(60), || {
        let text = machine.run(&["cat", KILL_LOG]).stdout;
        let records: Vec<serde_json::Value> = String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .filter(|record: &serde_json::Value| record["pid"].as_i64() == first.parse().ok())
            .collect();
        (records.len() >= 2).then_some(records)
    })
    .unwrap_or_else(|| panic!("no intent and outcome for pid {first}\n{}", log()));
    let intent = &records[0];
    let outcome = &records[1];
    println!("intent: {intent}\noutcome: {outcome}");
    assert_eq!(intent["kind"], "intent");
    assert_eq!(intent["rule"], "leaky-service");
    assert_eq!(intent["signals"], serde_json::json!(["restart-unit"]));
    assert_eq!(intent["trigger"]["trigger"], "imminent");
    assert!(
        intent["reason"]
            .as_str()
            .is_some_and(|reason| reason.ends_with(&format!(
                "main process of {SERVICE}: the unit is restarted through systemd"
            ))),
        "{intent}"
    );
    assert_eq!(outcome["kind"], "outcome");
    assert_eq!(outcome["outcome"], "exited", "{outcome}");
    assert!(
        outcome["detail"]
            .as_str()
            .is_some_and(|detail| detail.starts_with(&format!(
                "unit {SERVICE} restarted through systemd's D-Bus API"
            ))),
        "{outcome}"
    );
}

//! /proc mounted with `hidepid=2`: the guardian runs in its own mount namespace where a
//! second proc instance with `hidepid=2` covers /proc, outside the mount's group (root's
//! group 0 sees everything; a hardened host's `gid=proc` puts root outside) and without
//! CAP_SYS_PTRACE (as a unit with a trimmed capability set would). It must say that other users' processes are
//! invisible and what to do, keep working on what it sees, and kill nothing else.

use super::{TIMEOUT, wait_log};
use crate::{
    common::{
        Daemon, DaemonOptions, Needs, assert_every_kill_has_an_intent, drop_ptrace, marker,
        require, spawn_hog_with, wait_for,
    },
    killswitch::{config, rule},
};

/// Between fork and exec of the guardian: a private mount namespace, a `hidepid=2` proc
/// on /proc, group nobody instead of root's, and CAP_SYS_PTRACE out of the bounding set
/// (so root's exec does not get it).
/// Only raw syscalls: async-signal-safe.
fn hidepid_namespace() -> std::io::Result<()> {
    let check = |result: libc::c_int| {
        if result == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: plain syscalls on static C strings, in the child before exec.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            0,
            c"hidepid=2".as_ptr().cast(),
        ))?;
        check(libc::setgroups(0, std::ptr::null()))?;
        check(libc::setgid(65534))?;
    }
    drop_ptrace()
}

/// A hog of another user (nobody) is invisible behind `hidepid=2`: the guardian warns
/// naming /proc, the option and the fixes, and spares it (it cannot see it); a hog with
/// the guardian's own credentials and the same marker is killed with its intent record,
/// so the pipeline still works on what it sees.
#[test]
fn hidepid_2_is_named_and_only_visible_processes_are_judged() {
    if !require(&[Needs::Root]) {
        return;
    }
    let mark = marker("hidepid");
    let mut hidden = spawn_hog_with(&mark, &["--rss", "16"], |command| {
        use std::os::unix::process::CommandExt as _;
        command.uid(65534).gid(65534);
    });
    let daemon = Daemon::start_with(
        &config(&format!(
            "lock_memory = false\n{}",
            rule("hidepid", &mark, "8MiB", "action = \"kill\"")
        )),
        &["--source", "procfs"],
        &DaemonOptions {
            pre_exec: Some(hidepid_namespace),
            ..DaemonOptions::default()
        },
    );
    // The kernel shows hidepid=2 as "invisible" in mountinfo.
    wait_log(&daemon, "/proc is mounted with hidepid=invisible");
    let text = daemon.log();
    for needle in ["CAP_SYS_PTRACE", "processes of other users are invisible"] {
        assert!(
            text.contains(needle),
            "the hidepid warning lacks {needle:?}:\n{text}"
        );
    }

    // Same credentials as the guardian (root, group nobody, no CAP_SYS_PTRACE): the
    // ptrace rules behind hidepid let it see this one.
    let mut visible = spawn_hog_with(&mark, &["--rss", "16"], |command| {
        use std::os::unix::process::CommandExt as _;
        command.gid(65534);
        // SAFETY: one prctl between fork and exec.
        unsafe {
            command.pre_exec(drop_ptrace);
        }
    });
    let killed = wait_for(TIMEOUT, || visible.has_exited().then_some(()));
    assert!(
        killed.is_some(),
        "a hog the guardian can see was not killed:\n{}",
        daemon.log()
    );
    assert_every_kill_has_an_intent(&daemon.kill_log_path(), &[visible.pid()]);
    let seen = daemon.get_json(&format!("/api/v1/processes?pid={}", hidden.pid()));
    assert_eq!(
        seen.as_array().map(Vec::len),
        Some(0),
        "the guardian saw a hidden process: hidepid=2 did not take effect: {seen}"
    );
    assert!(
        !hidden.has_exited(),
        "a process the guardian cannot see exited:\n{}",
        daemon.log()
    );
}

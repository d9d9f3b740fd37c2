//! No escape by disguise: an unprivileged process that made itself a container-shaped
//! cgroup, and one that renamed itself to a protected name, are both killed by a host
//! rule.

use std::{
    ffi::CString,
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::Command,
};

use super::{config, containers::explain, rule, wait_exit, wait_outcome};
use crate::common::{
    Daemon, Needs, TestProcess, marker, memhog_bin, memory_hierarchy, require, spawn_hog_with,
    wait_for,
};

/// The unprivileged user the disguised processes run as.
fn nobody() -> (u32, u32) {
    let user = nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .expect("user nobody exists");
    (user.uid.as_raw(), user.gid.as_raw())
}

/// memhog where the unprivileged user can run it (the build tree may not be readable).
struct HogCopy(tempfile::TempDir);

impl HogCopy {
    fn new() -> HogCopy {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod temp dir");
        std::fs::copy(memhog_bin(), dir.path().join("memhog")).expect("copy memhog");
        HogCopy(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.path().join("memhog")
    }
}

/// A cgroup delegated to `uid` (as systemd delegates a subtree to a user), and the
/// directories the user makes in it, removed deepest first on drop after their
/// processes (the test's own) are killed.
struct Delegated {
    root: PathBuf,
    made: Vec<PathBuf>,
}

impl Delegated {
    fn new(name: &str, uid: u32, gid: u32) -> Delegated {
        let root = memory_hierarchy().join(name);
        std::fs::create_dir(&root).unwrap_or_else(|e| panic!("mkdir {}: {e}", root.display()));
        for path in [root.clone(), root.join("cgroup.procs")] {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
        Delegated {
            root,
            made: Vec::new(),
        }
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for dir in self.made.iter().rev().chain([&self.root]) {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|line| line.trim().parse().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = wait_for(std::time::Duration::from_secs(5), || {
                std::fs::remove_dir(dir).ok()
            });
        }
    }
}

/// Makes `command` drop to `uid`/`gid` and then, as that user, create `cgroup` (and its
/// parents inside the delegated tree) and move itself there, before it execs.
fn as_user_in_own_cgroup(command: &mut Command, uid: u32, gid: u32, dirs: &[PathBuf]) {
    let dirs: Vec<CString> = dirs
        .iter()
        .map(|dir| CString::new(dir.as_os_str().as_encoded_bytes()).expect("path"))
        .collect();
    let procs = CString::new(
        dirs.last()
            .expect("a cgroup")
            .as_bytes()
            .iter()
            .chain(b"/cgroup.procs")
            .copied()
            .collect::<Vec<u8>>(),
    )
    .expect("path");
    // SAFETY: only async-signal-safe calls between fork and exec (setgroups, setgid,
    // setuid, mkdir, open, write, close) on buffers prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            let fail = || Err(std::io::Error::last_os_error());
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return fail();
            }
            for dir in &dirs {
                if libc::mkdir(dir.as_ptr(), 0o755) != 0
                    && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                {
                    return fail();
                }
            }
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return fail();
            }
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written != 1 {
                return fail();
            }
            Ok(())
        });
    }
}

/// As `nobody`, makes `layout` (relative, inside a delegated cgroup) and runs a hog in
/// it; checks how `explain` classifies it, then that a host rule kills it.
fn disguised_in_own_cgroup_is_killed(test: &str, layout: &[&str], kind: &str) {
    let m = marker(test);
    let (uid, gid) = nobody();
    let hog_copy = HogCopy::new();
    let mut delegated = Delegated::new(&m, uid, gid);
    let mut dirs = Vec::new();
    let mut dir = delegated.root.clone();
    for part in layout {
        dir = dir.join(part);
        dirs.push(dir.clone());
    }
    delegated.made = dirs.clone();
    // The hook replaces the command: the same memhog, from where nobody can run it.
    let mut hog: TestProcess = spawn_hog_with(&m, &["--rss", "60"], |command| {
        *command = Command::new(hog_copy.path());
        command
            .args(["--rss", "60", "--marker", &m])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        as_user_in_own_cgroup(command, uid, gid, &dirs);
    });
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", hog.pid())).expect("cgroup");
    let path = format!("/{m}/{}", layout.join("/"));
    assert!(cgroup.contains(&path), "not in its own cgroup: {cgroup}");
    let explained = explain(hog.pid());
    assert_eq!(explained["uid"], uid, "runs unprivileged");
    assert_eq!(explained["classification"]["kind"], kind, "{explained}");
    assert_eq!(explained["vetted"]["verdict"], "unconfirmed", "{explained}");
    let daemon = Daemon::start(
        &config(&rule("host", &m, "40MiB", "")),
        &["--source", "procfs"],
    );
    wait_exit(&mut hog, &daemon);
    let outcome = wait_outcome(&daemon, hog.pid());
    assert_eq!(outcome["rule"], "host", "{outcome}");
    drop(hog);
    drop(delegated);
}

/// A made-up id: 64 hex digits, as runtimes name containers.
fn fake_id() -> String {
    format!("{:0>64}", format!("{:x}", std::process::id())).replace('0', "d")
}

#[test]
fn an_unprivileged_process_in_a_container_shaped_cgroup_it_made_is_killed_by_a_host_rule() {
    if !require(&[Needs::Root]) {
        return;
    }
    // Docker's cgroupfs layout: `.../docker/<id>`.
    disguised_in_own_cgroup_is_killed("disguise-cgroup", &["docker", &fake_id()], "container");
}

#[test]
fn an_unprivileged_process_in_an_unknown_layout_it_made_is_killed_by_a_host_rule() {
    if !require(&[Needs::Root]) {
        return;
    }
    // An id no layout knows: classified unknown, but the cgroup is not root's.
    disguised_in_own_cgroup_is_killed("disguise-unknown", &["ci-job", &fake_id()], "unknown");
}

#[test]
fn an_unprivileged_process_renamed_to_a_protected_name_is_killed_by_a_host_rule() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("disguise-comm");
    let (uid, gid) = nobody();
    let hog_copy = HogCopy::new();
    // The hook replaces the command: the same memhog, from where nobody can run it,
    // renaming itself with prctl(PR_SET_NAME).
    let mut hog = spawn_hog_with(&m, &["--rss", "60", "--comm", "sshd"], |command| {
        *command = Command::new(hog_copy.path());
        command
            .args(["--rss", "60", "--comm", "sshd", "--marker", &m])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .uid(uid)
            .gid(gid);
    });
    let comm = Path::new("/proc").join(hog.pid().to_string()).join("comm");
    assert_eq!(std::fs::read_to_string(&comm).expect("comm").trim(), "sshd");
    let explained = explain(hog.pid());
    assert_eq!(explained["comm"], "sshd");
    assert_eq!(explained["impostor"], "sshd");
    assert!(explained["protected"].is_null(), "{explained}");
    let daemon = Daemon::start(
        &config(&rule("host", &m, "40MiB", "")),
        &["--source", "procfs"],
    );
    wait_exit(&mut hog, &daemon);
    let outcome = wait_outcome(&daemon, hog.pid());
    assert_eq!(outcome["rule"], "host", "{outcome}");
}

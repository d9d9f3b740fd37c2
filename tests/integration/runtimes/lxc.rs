//! LXC (Debian's lxc, busybox template): the container's init is the test's hog (a
//! script in the rootfs), so it is the LXC monitor's child as any container init is.

use super::{Case, HOG_SCRIPT, check, parent_of, run, wait_rss};
use crate::common::{Needs, marker, require, wait_for};

/// A container made from the busybox template, stopped and destroyed on drop.
struct LxcContainer {
    name: String,
}

impl LxcContainer {
    fn create(name: &str) -> LxcContainer {
        run("lxc-create", &["-t", "busybox", "-n", name]).unwrap_or_else(|error| panic!("{error}"));
        let container = LxcContainer {
            name: name.to_string(),
        };
        let dir = std::path::Path::new("/var/lib/lxc").join(name);
        // No network (no bridge here), no AppArmor profile, and the hog as init.
        let config = std::fs::read_to_string(dir.join("config")).expect("lxc config");
        let config: String = config
            .lines()
            .filter(|line| !line.starts_with("lxc.net.") && !line.starts_with("lxc.apparmor."))
            .map(|line| format!("{line}\n"))
            .collect();
        let config = format!(
            "{config}lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n\
             lxc.init.cmd = /bin/sh /hog.sh {name}\n"
        );
        std::fs::write(dir.join("config"), config).expect("write lxc config");
        std::fs::write(dir.join("rootfs/hog.sh"), format!("{HOG_SCRIPT}\n")).expect("hog.sh");
        container
    }

    fn start(&self) -> i32 {
        run("lxc-start", &["-n", &self.name, "-d"]).unwrap_or_else(|error| panic!("{error}"));
        wait_for(std::time::Duration::from_secs(30), || {
            run("lxc-info", &["-n", &self.name, "-p", "-H"])
                .ok()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("container {} has no init pid", self.name))
    }
}

impl Drop for LxcContainer {
    fn drop(&mut self) {
        let _ = run("lxc-stop", &["-k", "-n", &self.name]);
        let _ = run("lxc-destroy", &["-n", &self.name]);
    }
}

#[test]
fn lxc_container_is_classified_confirmed_and_spared_and_its_monitor_protected() {
    if !require(&[Needs::Root, Needs::Lxc]) {
        return;
    }
    // LXC names: letters, digits and dashes; short.
    let m = marker("lxc");
    let container = LxcContainer::create(&m);
    let pid = container.start();
    wait_rss(pid, 50 * 1024 * 1024);
    let monitor = parent_of(pid);
    check(&Case {
        marker: &m,
        runtime: "lxc",
        id: &m,
        name: None,
        pod: None,
        pid,
        helper: monitor,
        containers_config: "",
    });
}

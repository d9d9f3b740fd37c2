//! The kernel-file layer: every parser of /proc and cgroupfs text, on the bytes the
//! kernel wrote (the readers in `procfs` and `cgroup` hold and read the files; fixture
//! roots feed the same parsers in tests).

pub mod cgroup;
pub mod proc;
pub mod system;

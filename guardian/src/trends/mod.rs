//! Leak-slope trends: an online detector per process identity and per cgroup.
//! (Owned by the trends work.)

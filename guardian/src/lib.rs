//! guardian: a memory guardian for Linux hosts.
//!
//! The layout follows the data: `sources` (eBPF, /proc, cgroups; their text parsers in
//! `sources::kernfs`) and `names` fill the `model`; `classify` tells hosts from
//! containers; `policy` and `trends` read the model; the daemon's pipeline publishes
//! one immutable `snapshot` per tick, which `http` (metrics and JSON API) reads;
//! `redact` hides secrets in command lines for every output; `audit` is the kill log; `daemon` wires them together; `cli` is the command line.
//! Imports only point down these layers (`cargo xtask layers` checks it).

pub mod audit;
pub mod classify;
pub mod cli;
pub mod config;
pub mod daemon;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod hooks;
pub mod http;
pub mod model;
pub mod names;
pub mod policy;
pub mod redact;
pub mod snapshot;
pub mod sources;
#[cfg(test)]
mod test_support;
pub mod trends;

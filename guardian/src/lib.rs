//! guardian: a memory guardian for Linux hosts.
//!
//! The layout follows the data: `sources` (eBPF, /proc, cgroups) fill the `model`;
//! `classify` tells hosts from containers; `policy` and `trends` read the model;
//! `audit`, `http` (metrics and JSON API) and the daemon's logs are the outputs.
//! `daemon` wires them together; `cli` is the command line.

pub mod audit;
pub mod classify;
pub mod cli;
pub mod config;
pub mod daemon;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod model;
pub mod names;
pub mod policy;
pub mod snapshot;
pub mod sources;
#[cfg(test)]
mod test_support;
pub mod trends;

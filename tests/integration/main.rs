//! Integration tests: the real `guardian` binary against the real kernel, processes,
//! cgroups, Docker engine and Prometheus. One module per area.

mod audit;
mod audit_crash;
mod common;
#[path = "../../guardian/src/redact/corpus/format.rs"]
mod corpus_format;
mod daemonset;
mod docker;
mod fleet;
mod hooks;
mod journald;
mod killswitch;
mod metrics;
mod notify;
mod readers;
mod redaction;
mod robustness;
mod runtimes;
mod sources;
mod systemd;
mod trends;

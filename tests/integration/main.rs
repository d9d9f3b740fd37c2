//! Integration tests: the real `guardian` binary against the real kernel, processes,
//! cgroups, Docker engine and Prometheus. One module per area.

mod audit;
mod audit_crash;
mod common;
#[path = "../../guardian/src/audit/redact/corpus/format.rs"]
mod corpus_format;
mod docker;
mod killswitch;
mod metrics;
mod readers;
mod redaction;
mod sources;
mod systemd;
mod trends;

//! The daemon: wires sources, model, policy, trends and outputs together, and handles
//! signals (SIGTERM/SIGINT stop, SIGHUP reloads the config).

pub mod notify;
mod state;

pub use state::{AppState, SourceKind, SourceStatus, Telemetry, Tracked};

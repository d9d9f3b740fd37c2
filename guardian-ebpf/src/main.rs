//! guardian's eBPF programs. Built for `bpfel-unknown-none` by guardian's build script;
//! on the host this file builds to an empty binary so workspace-wide commands work.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod probes;

#[cfg(not(target_arch = "bpf"))]
fn main() {}

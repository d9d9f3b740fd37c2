//! Builds guardian's eBPF programs (the `guardian-ebpf` crate) for the BPF target with
//! the nightly toolchain and bpf-linker, when the `ebpf` feature is on. The object lands
//! in `OUT_DIR/guardian-probes` and is embedded by `sources::ebpf`.

#[cfg(feature = "ebpf")]
fn main() -> anyhow::Result<()> {
    use anyhow::{Context as _, anyhow};

    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("reading the workspace metadata (cargo metadata)")?;
    let package = metadata
        .packages
        .into_iter()
        .find(|package| package.name.as_str() == "guardian-ebpf")
        .ok_or_else(|| anyhow!("guardian-ebpf is not in the workspace"))?;
    let root_dir = package
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent directory for {}", package.manifest_path))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: package.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::Nightly,
    )
    .context(
        "building the eBPF programs; run `cargo xtask setup` to install the nightly's \
         rust-src, llvm-22-dev and bpf-linker, or build with --no-default-features",
    )
}

#[cfg(not(feature = "ebpf"))]
fn main() {}

//! `cargo xtask image`: the container image the Kubernetes DaemonSet runs, built without
//! a registry or a base image: a root filesystem with the guardian binary, the shared
//! libraries `ldd` lists for it, the shipped config (dry-run) and an empty state
//! directory for the kill log, handed to `docker import`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::cmd;

/// Flags of `cargo xtask image`.
#[derive(clap::Args)]
pub struct Options {
    /// Image name and tag.
    #[arg(long, default_value = concat!("guardian:", env!("CARGO_PKG_VERSION")))]
    pub tag: String,
    /// Put this guardian binary in the image instead of building the release one (the
    /// integration tests pass the binary under test).
    #[arg(long)]
    pub binary: Option<PathBuf>,
}

/// Where the image listens: every address of the pod, the port the manifests name.
const LISTEN: &str = "0.0.0.0:9471";

/// Builds the image and prints its tag.
pub fn image(root: &Path, options: &Options) -> anyhow::Result<()> {
    let binary = match &options.binary {
        Some(binary) => binary.clone(),
        None => {
            cmd::run(
                root,
                "build release guardian",
                "cargo",
                &["build", "-p", "guardian", "--release", "--locked"],
            )?;
            root.join("target/release/guardian")
        }
    };
    let rootfs = tempfile::tempdir().context("temp dir for the image's root filesystem")?;
    populate(root, &binary, rootfs.path())?;
    import(rootfs.path(), &options.tag)?;
    println!("image: {}", options.tag);
    Ok(())
}

/// Lays out the root filesystem: binary, its libraries at their paths, config, state dir.
fn populate(root: &Path, binary: &Path, rootfs: &Path) -> anyhow::Result<()> {
    copy(binary, &rootfs.join("usr/bin/guardian"))?;
    for library in shared_libraries(binary)? {
        let inside = rootfs.join(library.strip_prefix("/").unwrap_or(&library));
        copy(&library, &inside)?;
    }
    copy(
        &root.join("config/guardian.toml"),
        &rootfs.join("etc/guardian/guardian.toml"),
    )?;
    // Mount points and the kill log's directory (a volume in the DaemonSet).
    for dir in ["var/lib/guardian", "proc", "sys", "tmp", "dev"] {
        std::fs::create_dir_all(rootfs.join(dir))
            .with_context(|| format!("creating {dir} in the image"))?;
    }
    Ok(())
}

/// The files `ldd` resolves for `binary` (the loader included), symlinks followed.
fn shared_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .with_context(|| format!("ldd {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    if let Some(missing) = text.lines().find(|line| line.contains("not found")) {
        bail!(
            "{} needs a library ldd cannot find: {}",
            binary.display(),
            missing.trim()
        );
    }
    Ok(parse_ldd(&text))
}

/// Paths in `ldd` output: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO has no file.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, resolved)) => resolved.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// `tar -C rootfs -c . | docker import --change ... - TAG`.
fn import(rootfs: &Path, tag: &str) -> anyhow::Result<()> {
    let entrypoint = r#"ENTRYPOINT ["/usr/bin/guardian"]"#;
    let command = format!(r#"CMD ["run", "--listen", "{LISTEN}"]"#);
    println!(
        "==> [docker import] tar -C {} -c . | docker import --change '{entrypoint}' --change '{command}' - {tag}",
        rootfs.display()
    );
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["--owner=0", "--group=0", "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting tar")?;
    let imported = Command::new("docker")
        .args(["import", "--change", entrypoint, "--change", &command])
        .args(["--change", "EXPOSE 9471", "-", tag])
        .stdin(tar.stdout.take().context("tar stdout")?)
        .stdout(Stdio::null())
        .status()
        .context("starting docker import (is the Docker engine running?)")?;
    let tarred = tar.wait().context("waiting for tar")?;
    if !tarred.success() || !imported.success() {
        bail!("step 'docker import' failed (tar {tarred}, docker import {imported})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_give_library_paths_without_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f58)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f58)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f58)\n\
                    \tlibmissing.so => not found\n";
        assert_eq!(
            parse_ldd(text),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }
}

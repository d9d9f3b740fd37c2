//! `cargo xtask package`: the Debian package (binary, systemd unit, config as a conffile,
//! alert rules, dashboard, maintainer scripts that create /var/lib/guardian and enable
//! the unit), built by cargo-deb from `[package.metadata.deb]` in guardian/Cargo.toml.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::cmd;

/// The cargo-deb release the package metadata was written and tested against.
const CARGO_DEB_VERSION: &str = "3.8.0";

/// Builds the release .deb into `target/debian/` and returns its path.
pub fn package(root: &Path) -> anyhow::Result<PathBuf> {
    ensure_cargo_deb(root)?;
    let out_dir = root.join("target/debian");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out = out_dir.display().to_string();
    let printed = cmd::output(
        root,
        "build the .deb",
        "cargo",
        &["deb", "-p", "guardian", "--locked", "-o", &out],
    )?;
    let deb = deb_path(&printed)?;
    println!("package: {}", deb.display());
    Ok(deb)
}

/// Installs cargo-deb when it is missing or another version (about 40 s once); a second
/// run installs nothing.
pub fn ensure_cargo_deb(root: &Path) -> anyhow::Result<()> {
    let installed = std::process::Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(CARGO_DEB_VERSION)
        });
    if installed {
        return Ok(());
    }
    println!(
        "setup: installing cargo-deb {CARGO_DEB_VERSION} (about 40 s): `cargo xtask package` and the systemd test build the .deb with it"
    );
    cmd::run(
        root,
        "install cargo-deb",
        "cargo",
        &[
            "install",
            "cargo-deb",
            "--locked",
            "--version",
            CARGO_DEB_VERSION,
        ],
    )
}

/// cargo-deb prints the path of the package it wrote as its last stdout line.
fn deb_path(stdout: &str) -> anyhow::Result<PathBuf> {
    let Some(line) = stdout
        .lines()
        .map(str::trim)
        .rfind(|line| line.ends_with(".deb"))
    else {
        bail!("cargo deb did not print the path of a .deb; its output was:\n{stdout}");
    };
    let path = PathBuf::from(line);
    if !path.is_file() {
        bail!(
            "cargo deb reported {} but no such file exists",
            path.display()
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::deb_path;

    #[test]
    fn finds_the_printed_package() {
        let deb = std::env::temp_dir().join(format!(
            "xtask-package-test-{}_0.1.0-1_amd64.deb",
            std::process::id()
        ));
        std::fs::write(&deb, b"!<arch>").expect("write deb");
        let printed = format!("warning: something\n{}\n", deb.display());
        let found = deb_path(&printed);
        std::fs::remove_file(&deb).expect("remove test file");
        assert_eq!(found.expect("a path"), deb);
    }

    #[test]
    fn reports_missing_output() {
        let error = deb_path("nothing useful\n").expect_err("no .deb");
        assert!(error.to_string().contains("nothing useful"), "{error}");
        let error = deb_path("/nonexistent/guardian.deb\n").expect_err("missing file");
        assert!(error.to_string().contains("no such file"), "{error}");
    }
}

//! Running commands: each is printed before it runs, and a failure names the step and
//! the command to rerun by hand.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

/// Runs `program args` in `dir`, inheriting stdio.
pub fn run(dir: &Path, step: &str, program: &str, args: &[&str]) -> anyhow::Result<()> {
    run_env(dir, step, program, args, &[])
}

/// Like [`run`], with extra environment variables.
pub fn run_env(
    dir: &Path,
    step: &str,
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<()> {
    let line = render(program, args, env);
    println!("==> [{step}] {line}");
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .status()
        .with_context(|| format!("step '{step}': cannot start `{line}`"))?;
    if !status.success() {
        bail!("step '{step}' failed ({status}); rerun by hand: {line}");
    }
    Ok(())
}

/// Runs and captures stdout (stderr passes through); fails like [`run`].
pub fn output(dir: &Path, step: &str, program: &str, args: &[&str]) -> anyhow::Result<String> {
    let line = render(program, args, &[]);
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("step '{step}': cannot start `{line}`"))?;
    if !out.status.success() {
        bail!(
            "step '{step}' failed ({}); rerun by hand: {line}",
            out.status
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True when `program args` runs and exits 0 (output discarded): for probes.
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn render(program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut parts: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.push(program.to_string());
    parts.extend(args.iter().map(|arg| {
        if arg.contains(' ') {
            format!("'{arg}'")
        } else {
            (*arg).to_string()
        }
    }));
    parts.join(" ")
}

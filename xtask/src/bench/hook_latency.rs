//! Kill latency with a hung hook, beside the same without any hook, in the same run: two
//! guardians (eBPF) run at once, each with the kill-latency rule on a marker of its own;
//! one also has a hook on kill events whose command sleeps for an hour and whose webhook
//! never answers (a listener the benchmark holds and never accepts on), with a timeout
//! longer than the whole run, so every slot of the hook stays busy from the first kill
//! on. Runs alternate (hooked first, then plain; then the other way round), each memhog
//! killed by one of them; latency as in `kill_latency` (threshold crossing to process
//! gone). Hooks are never on the kill's path: the ratio should stay near 1.

use std::net::TcpListener;

use anyhow::Context as _;

use super::{
    Binaries,
    daemon::{Guardian, Source},
    harness::{self, Stats},
    kill_latency::{Killer, config, one_kill},
    report::{Row, Verdict, latency_text, ms, ratio_text},
};

/// Longer than any run: the hook stays hung throughout.
const HOOK_TIMEOUT_S: u64 = 600;
/// A hooked median this many times the plain one or less counts as "not delayed" on a
/// shared 2-core host (the two arms' own scatter is of this order).
const RATIO_TARGET: f64 = 1.5;

pub fn run(bins: &Binaries, runs: usize) -> Vec<Row> {
    println!(
        "\n== kill latency with a hung hook (ebpf): {runs} pairs of marked memhogs, one killed by a guardian whose kill hook hangs, one by a guardian with no hook"
    );
    let figure = "kill latency, hung hook (ebpf)";
    match measure(bins, runs) {
        Ok((hooked, plain, ratios)) => vec![Row {
            figure: figure.to_string(),
            measured: latency_text(&hooked),
            baseline: format!("no hook p50 {} p99 {}", ms(plain.median), ms(plain.p99)),
            ratio: ratio_text(&ratios),
            target: format!("ratio <= {RATIO_TARGET} (off the kill path)"),
            verdict: Verdict::at_most(ratios.median, RATIO_TARGET),
        }],
        Err(error) => vec![Row::failed(figure, &error)],
    }
}

/// The hung hook: a command that sleeps and a webhook that never answers.
fn hung_hook(silent: &TcpListener) -> anyhow::Result<String> {
    let addr = silent
        .local_addr()
        .context("the silent listener's address")?;
    Ok(format!(
        r#"
[[hook]]
name = "hung"
events = ["kill"]
command = ["/bin/sleep", "3600"]
url = "http://{addr}/events"
timeout = "{HOOK_TIMEOUT_S}s"
retries = 0
"#
    ))
}

/// (hooked latencies, plain latencies, per-pair ratios hooked / plain), in seconds.
fn measure(bins: &Binaries, runs: usize) -> anyhow::Result<(Stats, Stats, Stats)> {
    let id = std::process::id();
    let hooked_marker = format!("guardian-bench-hook-{id}-hung");
    let plain_marker = format!("guardian-bench-hook-{id}-none");
    // Accepts connections into the kernel's backlog and never answers them.
    let silent = TcpListener::bind("127.0.0.1:0").context("binding the silent receiver")?;
    let hooked = Guardian::start(
        &bins.guardian,
        Source::Ebpf,
        &format!("{}{}", config(&hooked_marker), hung_hook(&silent)?),
    )?;
    let plain = Guardian::start(&bins.guardian, Source::Ebpf, &config(&plain_marker))?;
    let (mut with_hook, mut without, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        harness::check_interrupted()?;
        let context = || format!("run {}", run + 1);
        let kill = |guardian: &Guardian, marker: &str| {
            one_kill(bins, guardian, &format!("{marker}-{run}"), Killer::Guardian)
                .map(|(latency, _)| latency)
                .with_context(context)
        };
        let (a, b) = if run % 2 == 0 {
            let a = kill(&hooked, &hooked_marker)?;
            (a, kill(&plain, &plain_marker)?)
        } else {
            let b = kill(&plain, &plain_marker)?;
            (kill(&hooked, &hooked_marker)?, b)
        };
        println!("  run {}: hung hook {}; no hook {}", run + 1, ms(a), ms(b));
        with_hook.push(a);
        without.push(b);
        ratios.push(a / b);
    }
    // Show that the hook was hung all along: its attempts under way or dropped as busy.
    if let Ok(metrics) = hooked.get("/metrics") {
        for line in metrics.lines().filter(|line| {
            line.starts_with("guardian_hook_")
                && line.contains("hook=\"hung\"")
                && !line.contains("_bucket{")
        }) {
            println!("  {line}");
        }
    }
    drop(silent);
    Ok((
        Stats::of(&with_hook).context("no hooked kill measured")?,
        Stats::of(&without).context("no plain kill measured")?,
        Stats::of(&ratios).context("no pair measured")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hung_hook_waits_longer_than_a_run_and_never_retries() {
        let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
        let hook = hung_hook(&silent).expect("hook");
        assert!(hook.contains("events = [\"kill\"]"), "{hook}");
        assert!(hook.contains("timeout = \"600s\""), "{hook}");
        assert!(hook.contains("retries = 0"), "{hook}");
    }
}

//! Reads the suite's `GUARDIAN-VM <key> <value>` lines off a VM's serial console and
//! prints the matrix, one row per kernel.

use std::time::Duration;

/// What one kernel's run reported.
pub struct Row {
    pub label: String,
    pub kernel: String,
    pub boot_s: String,
    pub wall: Duration,
    pub source: String,
    pub fallback: String,
    pub refresh: String,
    pub btf: String,
    pub load_ms: String,
    /// `PROGRAM=COUNT ...`: instructions the verifier processed per program.
    pub verified_insns: String,
    /// The program attached to `oom:mark_victim` (its arguments changed in 6.8).
    pub oom_program: String,
    /// Kernel events the guardian had received through its BPF ring buffer ("-" without).
    pub ring_events: String,
    pub passed: Vec<String>,
    pub failed: Vec<String>,
    /// The suite's last line came: the VM did not die half-way.
    pub done: bool,
}

impl Row {
    pub fn parse(label: &str, console: &str, wall: Duration) -> Row {
        let mut row = Row {
            label: label.to_string(),
            kernel: "?".into(),
            boot_s: "?".into(),
            wall,
            source: "?".into(),
            fallback: "-".into(),
            refresh: "?".into(),
            btf: "?".into(),
            load_ms: "-".into(),
            verified_insns: String::new(),
            oom_program: "-".into(),
            ring_events: "-".into(),
            passed: Vec::new(),
            failed: Vec::new(),
            done: false,
        };
        for line in console.lines() {
            let Some(rest) = line.trim_end_matches('\r').strip_prefix("GUARDIAN-VM ") else {
                continue;
            };
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            let value = value.trim().to_string();
            match key {
                "kernel" => row.kernel = value,
                "boot_s" => row.boot_s = value,
                "source" => row.source = value,
                "fallback" => row.fallback = value,
                "refresh" => row.refresh = value,
                "btf" => row.btf = value,
                "load_ms" if !value.is_empty() => row.load_ms = value,
                "verified_insns" => row.verified_insns = value,
                "oom_program" if !value.is_empty() => row.oom_program = value,
                "ring_events" if !value.is_empty() => row.ring_events = value,
                "check" => match value.split_once(' ') {
                    Some((name, "pass")) => row.passed.push(name.to_string()),
                    Some((name, _)) => row.failed.push(name.to_string()),
                    None => row.failed.push(value),
                },
                "done" => row.done = true,
                _ => {}
            }
        }
        if !row.done {
            row.failed.push("suite did not finish".into());
        }
        row
    }

    pub fn green(&self) -> bool {
        self.failed.is_empty()
    }

    /// How many programs the verifier accepted (tp_btf tracepoints and the task iterator).
    fn programs(&self) -> usize {
        self.verified_insns.split_whitespace().count()
    }

    /// The verifier's instruction counts summed over the programs ("-" when none came).
    fn insns_total(&self) -> String {
        let counts: Vec<u64> = self
            .verified_insns
            .split_whitespace()
            .filter_map(|pair| pair.split_once('=')?.1.parse().ok())
            .collect();
        if counts.is_empty() {
            "-".into()
        } else {
            counts.iter().sum::<u64>().to_string()
        }
    }
}

/// The table, one row per kernel, then each failure by name.
pub fn print(rows: &[Row]) {
    println!(
        "\n{:<12} {:<28} {:>6} {:>7} {:<7} {:<13} {:<4} {:>5} {:>8} {:>7} {:>8} {:<15} {:>6}  fallback",
        "label",
        "kernel",
        "boot",
        "suite",
        "source",
        "refresh",
        "btf",
        "progs",
        "load ms",
        "insns",
        "ring ev",
        "oom program",
        "tests"
    );
    for row in rows {
        let boot: f64 = row.boot_s.parse().unwrap_or(0.0);
        println!(
            "{:<12} {:<28} {:>5.1}s {:>6.1}s {:<7} {:<13} {:<4} {:>5} {:>8} {:>7} {:>8} {:<15} {:>6}  {}",
            row.label,
            row.kernel,
            boot,
            (row.wall.as_secs_f64() - boot).max(0.0),
            row.source,
            row.refresh,
            row.btf,
            row.programs(),
            row.load_ms,
            row.insns_total(),
            row.ring_events,
            row.oom_program,
            format!(
                "{}/{}",
                row.passed.len(),
                row.passed.len() + row.failed.len()
            ),
            row.fallback,
        );
    }
    for row in rows.iter().filter(|row| !row.verified_insns.is_empty()) {
        println!("{}: verifier {}", row.label, row.verified_insns);
    }
    for row in rows.iter().filter(|row| !row.green()) {
        println!("{}: failed {}", row.label, row.failed.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_becomes_a_row() {
        let console = "noise\r\nGUARDIAN-VM kernel 6.12.118\r\nGUARDIAN-VM boot_s 12.5\n\
            GUARDIAN-VM source ebpf\nGUARDIAN-VM verified_insns rss_stat=1123 task_snapshot=219\n\
            GUARDIAN-VM ring_events 4512\nGUARDIAN-VM check ready pass\n\
            GUARDIAN-VM check twin_spared fail\nGUARDIAN-VM done\n";
        let row = Row::parse("6.12", console, Duration::from_secs(100));
        assert_eq!(row.kernel, "6.12.118");
        assert_eq!(row.source, "ebpf");
        assert_eq!(row.programs(), 2);
        assert_eq!(row.insns_total(), "1342");
        assert_eq!(row.ring_events, "4512");
        assert_eq!(row.passed, ["ready"]);
        assert_eq!(row.failed, ["twin_spared"]);
        assert!(!row.green());
    }

    #[test]
    fn a_suite_that_stops_half_way_fails() {
        let row = Row::parse(
            "6.1",
            "GUARDIAN-VM check ready pass\n",
            Duration::from_secs(9),
        );
        assert_eq!(row.failed, ["suite did not finish"]);
        assert_eq!(row.ring_events, "-");
        assert_eq!(row.insns_total(), "-");
    }
}

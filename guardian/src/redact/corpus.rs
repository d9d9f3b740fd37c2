//! The real-world corpus (`corpus/*.tsv`): secret-bearing command lines collected from
//! public sources (gitleaks' rules and tests, the Datadog agent's scrubber tests,
//! detect-secrets, the tools' manuals), each with its expected redaction, and
//! look-alikes that must pass byte-identical. Each line is checked as an argument vector
//! and as a one-string command line.

use std::collections::BTreeMap;

use super::{redact_args, redact_text};

mod format;

use format::{Case, split};

fn cases() -> Vec<Case> {
    format::cases(include_str!("corpus/secrets.tsv"))
}

fn lookalikes() -> Vec<(String, String)> {
    format::lookalikes(include_str!("corpus/lookalikes.tsv"))
}

#[test]
fn corpus_is_large_enough() {
    let cases = cases();
    let classes: BTreeMap<&str, usize> = cases.iter().fold(BTreeMap::new(), |mut map, case| {
        *map.entry(case.class.as_str()).or_default() += 1;
        map
    });
    assert!(cases.len() >= 150, "{} secret forms", cases.len());
    assert!(
        lookalikes().len() >= 50,
        "{} look-alikes",
        lookalikes().len()
    );
    assert!(classes.len() >= 10, "classes: {classes:?}");
}

#[test]
fn every_secret_form_redacts_as_expected_in_both_forms() {
    let mut failures = Vec::new();
    for case in cases() {
        let got = redact_args(&case.argv);
        if got != case.expected {
            failures.push(format!(
                "[{}] argv {:?}\n    got      {got:?}\n    expected {:?}",
                case.class, case.input, case.expected
            ));
        }
        let text = redact_text(&case.input);
        let leaked: Vec<&String> = case
            .secrets
            .iter()
            .filter(|s| text.contains(s.as_str()))
            .collect();
        if shlex::split(&text).as_ref() != Some(&case.expected) || !leaked.is_empty() {
            failures.push(format!(
                "[{}] one-string {:?}\n    got      {text:?}\n    expected {:?}",
                case.class, case.input, case.expected
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn lookalikes_pass_byte_identical() {
    let mut failures = Vec::new();
    for (class, line) in lookalikes() {
        let argv = split(&line);
        let got = redact_args(&argv);
        if got != argv {
            failures.push(format!("[{class}] argv {line:?}\n    got {got:?}"));
        }
        let text = redact_text(&line);
        if text != line {
            failures.push(format!("[{class}] one-string {line:?}\n    got {text:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} changed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

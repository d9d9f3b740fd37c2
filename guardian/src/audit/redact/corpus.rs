//! The real-world corpus (`corpus/*.tsv`): secret-bearing command lines collected from
//! public sources (gitleaks' rules and tests, the Datadog agent's scrubber tests,
//! detect-secrets, the tools' manuals), each with its expected redaction, and
//! look-alikes that must pass byte-identical. Each line is checked as an argument vector
//! and as a one-string command line.

use std::collections::BTreeMap;

use super::{REDACTED, redact_args, redact_text};

/// One corpus line with a secret.
pub(super) struct Case {
    pub class: String,
    pub input: String,
    pub argv: Vec<String>,
    pub expected: Vec<String>,
    /// The hidden texts, recovered by matching `input` against `expected`.
    pub secrets: Vec<String>,
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

fn rows(tsv: &str) -> impl Iterator<Item = Vec<String>> + '_ {
    tsv.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split('\t').map(unescape).collect())
}

fn split(line: &str) -> Vec<String> {
    shlex::split(line).unwrap_or_else(|| panic!("corpus line is not shell syntax: {line:?}"))
}

/// The texts of `input` that `expected` shows as `[REDACTED]`, argument by argument.
fn secrets_of(argv: &[String], expected: &[String]) -> Vec<String> {
    let mut secrets = Vec::new();
    for (arg, want) in argv.iter().zip(expected) {
        if arg == want {
            continue;
        }
        let literals: Vec<&str> = want.split(REDACTED).collect();
        let mut rest = arg.strip_prefix(literals[0]).unwrap_or(arg);
        for (k, literal) in literals.iter().enumerate().skip(1) {
            let last = k + 1 == literals.len();
            let end = match (literal.is_empty(), last) {
                (_, true) => rest.len() - literal.len().min(rest.len()),
                (true, false) => rest.len(),
                (false, false) => rest.find(literal).unwrap_or(rest.len()),
            };
            secrets.push(rest[..end].to_string());
            rest = rest[end..].strip_prefix(literal).unwrap_or(&rest[end..]);
        }
    }
    secrets
}

pub(super) fn cases() -> Vec<Case> {
    rows(include_str!("corpus/secrets.tsv"))
        .map(|row| {
            let argv = split(&row[1]);
            let expected = split(&row[2]);
            assert_eq!(argv.len(), expected.len(), "argument count of {:?}", row[1]);
            let secrets = secrets_of(&argv, &expected);
            assert!(!secrets.is_empty(), "no secret in {:?}", row[1]);
            Case {
                class: row[0].clone(),
                input: row[1].clone(),
                argv,
                expected,
                secrets,
            }
        })
        .collect()
}

pub(super) fn lookalikes() -> Vec<(String, String)> {
    rows(include_str!("corpus/lookalikes.tsv"))
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect()
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

//! Reading the redaction corpus (`secrets.tsv`, `lookalikes.tsv`): shared by the unit
//! tests and the integration test that runs the corpus's command lines as processes.
//! Columns are tab-separated; `\n` in a field is a newline and `\\` a backslash; lines
//! starting with `#` are comments. Command lines are shell syntax.
#![allow(
    dead_code,
    reason = "the integration test reads the secrets only, the unit tests everything"
)]

/// What the expected column shows in place of each secret.
pub const MARKER: &str = "[REDACTED]";

/// One secret-bearing corpus line.
pub struct Case {
    pub class: String,
    pub input: String,
    pub argv: Vec<String>,
    pub expected: Vec<String>,
    /// The hidden texts, recovered by matching `argv` against `expected`.
    pub secrets: Vec<String>,
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn rows(tsv: &str) -> impl Iterator<Item = Vec<String>> + '_ {
    tsv.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split('\t').map(unescape).collect())
}

/// A corpus command line as its argument vector.
pub fn split(line: &str) -> Vec<String> {
    shlex::split(line).unwrap_or_else(|| panic!("corpus line is not shell syntax: {line:?}"))
}

/// The texts of `argv` that `expected` shows as the marker, argument by argument.
fn secrets_of(argv: &[String], expected: &[String]) -> Vec<String> {
    let mut secrets = Vec::new();
    for (arg, want) in argv.iter().zip(expected) {
        if arg == want {
            continue;
        }
        let literals: Vec<&str> = want.split(MARKER).collect();
        let mut rest = arg.strip_prefix(literals[0]).unwrap_or(arg);
        for (k, literal) in literals.iter().enumerate().skip(1) {
            let end = if k + 1 == literals.len() {
                rest.len() - literal.len().min(rest.len())
            } else if literal.is_empty() {
                rest.len()
            } else {
                rest.find(literal).unwrap_or(rest.len())
            };
            secrets.push(rest[..end].to_string());
            rest = rest[end..].strip_prefix(literal).unwrap_or(&rest[end..]);
        }
    }
    secrets
}

/// The secret-bearing lines of `secrets.tsv`.
pub fn cases(tsv: &str) -> Vec<Case> {
    rows(tsv)
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

/// The lines of `lookalikes.tsv`: (class, command line).
pub fn lookalikes(tsv: &str) -> Vec<(String, String)> {
    rows(tsv)
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect()
}

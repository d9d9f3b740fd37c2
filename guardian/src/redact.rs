//! Redaction of secrets in command lines: the one path every output takes (kill log,
//! `/api/v1/processes`, `/metrics`, `guardian explain`, the daemon's log).
//!
//! It works on the argument vector, never on a space-joined string: a value is one
//! argument, spaces and all (`--password "a b"`). A command line held in one string
//! (`sh -c "..."`, a process that rewrote its title into one argument, free text) is
//! split shell-style and redacted the same way, its quoting kept.
//!
//! Three kinds of knowledge, each a table rather than code branches:
//! - [`tools`]: where programs take their secrets (`mysql -pX`, `sshpass -p X`,
//!   `redis-cli -a X`, `smbclient -U user%X`, `sqlplus user/X@db`, `htpasswd -b f u X`,
//!   `aws configure set KEY X`, `vault login X`, `mc alias set N URL AK X`...), where a
//!   flag means a secret for one tool and a port or width for another;
//! - [`names`]: names that announce a secret (`--db-password`, `API_TOKEN=`,
//!   `X-Api-Key:`, `"client_secret":`) and names that only point at one (`--token-file`);
//! - [`text`] and [`shapes`]: secrets inside an argument (URL userinfo, headers,
//!   connection strings, key blocks) and vendor token shapes plus a bounded entropy check.
//!
//! Values become `[REDACTED]`; flag names, user names, hosts, databases and argv[0] stay
//! readable. Redaction is conservative (a harmless value after a secret-named option is
//! hidden too) and idempotent.

mod command;
mod names;
mod shapes;
mod split;
mod text;
mod tools;

/// Compiles one of the redaction patterns (constants, checked by the unit tests).
fn regex(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).expect("redaction patterns are constants that compile")
}

/// What replaces every secret value.
pub const REDACTED: &str = "[REDACTED]";

pub use names::is_secret_name;

/// Redacts an argument vector (`/proc/PID/cmdline` split at NULs), one output argument
/// per input argument.
pub fn redact_args<S: AsRef<str>>(argv: &[S]) -> Vec<String> {
    command::redact(argv, 0)
}

/// Redacts an argument vector and joins it with spaces, as `ps` shows it.
pub fn redact_argv<S: AsRef<str>>(argv: &[S]) -> String {
    redact_args(argv).join(" ")
}

/// What every output shows of a process's command line: the redacted arguments joined by
/// spaces, or `[comm]` for a process without arguments (kernel threads, zombies).
pub fn redact_process_cmdline<S: AsRef<str>>(argv: &[S], comm: &str) -> String {
    if argv.is_empty() {
        format!("[{comm}]")
    } else {
        redact_argv(argv)
    }
}

/// Redacts a command line held in one string (a title rewritten into one argument,
/// `sh -c` scripts, free text such as a kill reason): split shell-style, redacted as an
/// argument vector, the secrets replaced where they sit so quoting stays as it was.
pub fn redact_text(text: &str) -> String {
    split::redact(text, &|words| command::redact(words, 0))
}

/// Redacts a command line as stored in a kill-log intent: arguments joined by NULs (as
/// `/proc/PID/cmdline` holds them) go through [`redact_argv`]; a string without NULs is
/// one argument and goes through [`redact_text`].
pub fn redact_cmdline(cmdline: &str) -> String {
    if cmdline.contains('\0') {
        let argv: Vec<&str> = cmdline
            .strip_suffix('\0')
            .unwrap_or(cmdline)
            .split('\0')
            .collect();
        redact_argv(&argv)
    } else {
        redact_text(cmdline)
    }
}

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

//! Redaction of secrets in command lines, before they are hashed, written or logged.
//!
//! Values are replaced with `[REDACTED]`; the names around them (flags, variables,
//! header names, URL user names) are kept so an operator still sees what was passed.
//! Redaction is conservative: a harmless value next to a secret-looking name is
//! redacted too. Applying it twice changes nothing.

use std::{borrow::Cow, sync::LazyLock};

use regex::{Captures, Regex};

/// What replaces every secret value.
pub const REDACTED: &str = "[REDACTED]";

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("redaction patterns are constants that compile")
}

/// `-----BEGIN ... PRIVATE KEY-----` blocks, up to their end marker or the end of input.
static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?s)(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(.*?)(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
    )
});
/// `Authorization: Bearer x`, `Proxy-Authorization: Basic x`, `Authorization: x`.
static AUTHORIZATION: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\b((?:proxy-)?authorization\s*:\s*)((?:{})\s+)?([^\s'\x22]+)",
        AUTH_SCHEMES.join("|")
    ))
});
/// Authorization schemes, kept in front of the redacted credentials.
const AUTH_SCHEMES: &[&str] = &[
    "basic",
    "bearer",
    "digest",
    "negotiate",
    "ntlm",
    "token",
    "apikey",
    "aws4-hmac-sha256",
];
/// Other `Name: value` pairs (headers such as `X-Api-Key:`, `Cookie:`); the name decides.
static HEADER: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b([A-Za-z][A-Za-z0-9_-]*)(\s*:\s*)([^\s'\x22]+)"));
/// `scheme://user:password@host`.
static URL_USERINFO: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)([^/\s@]+)@"));
/// `?name=value` and `&name=value` in URLs; the name decides.
static QUERY_PARAM: LazyLock<Regex> = LazyLock::new(|| regex(r"([?&;][A-Za-z0-9_.-]+=)([^&#\s]*)"));
/// `"name": "value"` members of JSON passed as an argument; the name decides.
static JSON_MEMBER: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"("[A-Za-z0-9_.-]+"\s*:\s*")((?:[^"\\]|\\.)*)(")"#));
/// Secrets recognisable by their shape alone.
static BARE_SECRETS: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", // JWT
        r"|\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",               // AWS access key id
        r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b",                        // GitHub tokens
        r"|\bgithub_pat_[A-Za-z0-9_]{22,}\b",
        r"|\bglpat-[A-Za-z0-9_-]{20,}\b",             // GitLab
        r"|\bxox[a-zA-Z]-[A-Za-z0-9-]+",              // Slack
        r"|\bAIza[0-9A-Za-z_-]{35}\b",                // Google API key
        r"|\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,}\b", // Stripe
        r"|\bnpm_[A-Za-z0-9]{36}\b",                  // npm
    ))
});
/// A name a `name=value` argument may start with (`--db-password`, `-Dkey`, `API_TOKEN`).
static ARG_NAME: LazyLock<Regex> = LazyLock::new(|| regex(r"^-{0,2}[A-Za-z_][A-Za-z0-9_.-]*$"));
static TOKEN: LazyLock<Regex> = LazyLock::new(|| regex(r"\S+"));

/// Returns `cmdline` with secret values replaced by `[REDACTED]`, arguments joined by
/// spaces. Give it the arguments joined by NULs (as `/proc/PID/cmdline` holds them) and
/// each argument is redacted whole, as by [`redact_argv`]; joined by spaces, a secret
/// holding spaces (`--password "a b"`) is only redacted up to its first space.
pub fn redact_cmdline(cmdline: &str) -> String {
    if cmdline.contains('\0') {
        let argv: Vec<&str> = cmdline
            .strip_suffix('\0')
            .unwrap_or(cmdline)
            .split('\0')
            .collect();
        return redact_argv(&argv);
    }
    let text = redact_patterns(cmdline);
    let tokens: Vec<regex::Match<'_>> = TOKEN.find_iter(&text).collect();
    let redacted = redact_args(tokens.iter().map(|token| token.as_str()));
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (token, arg) in tokens.iter().zip(redacted) {
        out.push_str(&text[last..token.start()]);
        out.push_str(&arg);
        last = token.end();
    }
    out.push_str(&text[last..]);
    BARE_SECRETS.replace_all(&out, REDACTED).into_owned()
}

/// Redacts an argument vector (`/proc/PID/cmdline` split at NULs) and joins it with
/// spaces: each argument is one value, spaces and all (`--password "a b c"`). Everything
/// [`redact_cmdline`] catches in the joined text is caught too.
pub fn redact_argv<S: AsRef<str>>(argv: &[S]) -> String {
    let args: Vec<String> = argv
        .iter()
        .map(|arg| redact_patterns(arg.as_ref()))
        .collect();
    let joined = redact_args(args.iter().map(String::as_str)).join(" ");
    // Again over the whole, for a header or key block split across arguments.
    BARE_SECRETS
        .replace_all(&redact_patterns(&joined), REDACTED)
        .into_owned()
}

/// The passes that look at the text as a whole: key blocks, headers, URLs, JSON.
fn redact_patterns(text: &str) -> String {
    let text = PRIVATE_KEY.replace_all(text, |c: &Captures<'_>| {
        format!("{}{REDACTED}{}", &c[1], &c[3])
    });
    let text = AUTHORIZATION.replace_all(&text, |c: &Captures<'_>| match c.get(2) {
        // A scheme with its credentials in the next argument: left to the joined pass.
        None if AUTH_SCHEMES.contains(&c[3].to_ascii_lowercase().as_str()) => c[0].to_string(),
        scheme => format!("{}{}{REDACTED}", &c[1], scheme.map_or("", |m| m.as_str())),
    });
    let text = URL_USERINFO.replace_all(&text, |c: &Captures<'_>| format!("{}{REDACTED}@", &c[1]));
    let text = redact_headers(&text);
    let text = QUERY_PARAM.replace_all(&text, |c: &Captures<'_>| {
        let name = c[1]
            .trim_start_matches(['?', '&', ';'])
            .trim_end_matches('=');
        if is_secret_name(name) || is_signature_param(name) {
            format!("{}{REDACTED}", &c[1])
        } else {
            c[0].to_string()
        }
    });
    let text = JSON_MEMBER.replace_all(&text, |c: &Captures<'_>| {
        if is_secret_name(
            c[1].trim_start_matches('"')
                .split('"')
                .next()
                .unwrap_or_default(),
        ) {
            format!("{}{REDACTED}{}", &c[1], &c[3])
        } else {
            c[0].to_string()
        }
    });
    text.into_owned()
}

/// `Name: value` pairs whose name looks secret, except `Authorization` (done before,
/// keeping its scheme) and the `user:` of a URL (`https://token:[REDACTED]@host`).
fn redact_headers(text: &str) -> Cow<'_, str> {
    HEADER.replace_all(text, |c: &Captures<'_>| {
        let name = &c[1];
        let start = c.get(0).map_or(0, |m| m.start());
        let in_url = text[..start].ends_with("//");
        if in_url || name.to_ascii_lowercase().ends_with("authorization") || !is_secret_name(name) {
            c[0].to_string()
        } else {
            format!("{name}{}{REDACTED}", &c[2])
        }
    })
}

/// What the previous argument asks of the next one.
#[derive(Clone, Copy, PartialEq)]
enum Pending {
    Nothing,
    /// `--password VALUE`: the value is secret.
    Value,
    /// `-u USER:PASSWORD` / `--user USER:PASSWORD`: the part after ':' is secret.
    UserPassword,
}

/// The argument pass, one element per argument: `--secret-flag value`, `name=value`,
/// `--user name:password`.
fn redact_args<'a>(args: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = Pending::Nothing;
    for arg in args {
        let before = std::mem::replace(&mut pending, Pending::Nothing);
        if before == Pending::Value && !looks_like_flag(arg) {
            out.push(REDACTED.to_string());
            continue;
        }
        if before == Pending::UserPassword && !looks_like_flag(arg) {
            out.push(redact_user_password(arg).into_owned());
            continue;
        }
        if let Some(redacted) = redact_assignment(arg) {
            out.push(redacted);
            continue;
        }
        if looks_like_flag(arg) {
            if is_user_flag(arg) {
                pending = Pending::UserPassword;
            } else if arg.len() > 2 && is_secret_name(arg) {
                pending = Pending::Value;
            }
        }
        out.push(arg.to_string());
    }
    out
}

/// `name=value` with a secret-looking name becomes `name=[REDACTED]`; the value of a
/// harmless name is searched again (`--env=TOKEN=x`, `--set=db.password=x`).
fn redact_assignment(arg: &str) -> Option<String> {
    let (name, value) = arg.split_once('=')?;
    if !ARG_NAME.is_match(name) {
        return None;
    }
    if is_secret_name(name) {
        return Some(format!("{name}={REDACTED}"));
    }
    if is_user_flag(name) {
        return Some(format!("{name}={}", redact_user_password(value)));
    }
    redact_assignment(value).map(|inner| format!("{name}={inner}"))
}

/// `user:password` → `user:[REDACTED]`; a numeric `uid:gid` (docker -u 0:0) is kept.
fn redact_user_password(value: &str) -> Cow<'_, str> {
    match value.split_once(':') {
        Some((user, secret))
            if !secret.is_empty() && !secret.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Cow::Owned(format!("{user}:{REDACTED}"))
        }
        _ => Cow::Borrowed(value),
    }
}

fn looks_like_flag(arg: &str) -> bool {
    arg.len() > 1
        && arg.starts_with('-')
        && arg[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '-')
}

fn is_user_flag(arg: &str) -> bool {
    arg == "-u" || arg == "--user"
}

/// Name parts that make a value secret on their own.
const SECRET_PARTS: &[&str] = &[
    "key", "pass", "pwd", "auth", "cred", "creds", "jwt", "cookie",
];
/// Substrings that make a name part secret (`dbpassword`, `clientsecret`, `accesstoken`).
const SECRET_SUBSTRINGS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "credential",
    "privatekey",
    "accesskey",
];
/// Last parts that name where a secret lives or how it is used, not the secret itself.
const BENIGN_LAST_PARTS: &[&str] = &[
    "file", "path", "dir", "method", "type", "mode", "length", "ttl", "timeout", "prompt",
    "helper", "cmd", "command",
];

/// True when a flag, variable or header name looks like it carries a secret.
pub fn is_secret_name(name: &str) -> bool {
    let parts = name_parts(name.trim_start_matches('-'));
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if first == "no" || BENIGN_LAST_PARTS.contains(&last.as_str()) {
        return false;
    }
    if parts.len() == 1
        && (first == "pwd" || first == "oldpwd")
        && name.chars().all(|c| c.is_ascii_uppercase())
    {
        // $PWD and $OLDPWD are directories.
        return false;
    }
    parts.iter().any(|part| {
        SECRET_PARTS.contains(&part.as_str())
            || SECRET_SUBSTRINGS.iter().any(|s| part.contains(s))
            || (part.starts_with("auth") && !part.starts_with("author"))
            || part.starts_with("authorization")
    })
}

/// URL parameters that carry signatures (pre-signed S3 and Azure SAS URLs).
fn is_signature_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "sig" || lower.ends_with("signature") || lower.ends_with("credential")
}

/// Lowercase parts of a name, split at punctuation and at lower-to-upper case changes.
fn name_parts(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                parts.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests;

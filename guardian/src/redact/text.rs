//! Secrets found inside one argument by its text alone: key blocks, headers, URL
//! userinfo and signatures, `name=value` pieces (env, conninfo, connection strings,
//! mount options, query strings), JSON members and scheme-less `user:password@host`.
//! Each pattern yields byte ranges of the argument to hide; names stay readable.

use std::{ops::Range, sync::LazyLock};

use regex::Regex;

use super::{names, regex, shapes};

/// Authorization schemes, kept in front of the redacted credentials.
pub(super) const AUTH_SCHEMES: &[&str] = &[
    "basic",
    "bearer",
    "digest",
    "negotiate",
    "ntlm",
    "token",
    "apikey",
    "aws4-hmac-sha256",
];

/// `-----BEGIN ... PRIVATE KEY-----` blocks, up to their end marker or the end of input.
pub(super) static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?s)-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----([^'\x22]*?)(?:-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|$)",
    )
});
/// `Authorization: Bearer x`, `Proxy-Authorization: Basic x`, `Authorization: x`: the
/// credentials run to the end of the header (a quote or a line end).
static AUTHORIZATION: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\b(?:proxy-)?authorization\s*:\s*(?:(?:{})\s+)?([^\s'\x22][^'\x22\r\n]*)",
        AUTH_SCHEMES.join("|")
    ))
});
/// `Cookie: a=1; b=2`: every cookie is a session.
static COOKIE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\b(?:set-)?cookie\s*:\s*([^\s'\x22][^'\x22\r\n]*)"));
/// Other `Name: value` pairs (`X-Api-Key: k`, YAML `password: x`); the name decides.
static HEADER: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b([A-Za-z][A-Za-z0-9_.-]*)\s*:[ \t]*([^\s'\x22,}]+)"));
/// `scheme://user:password@host`. The password runs to the last `@` of the authority:
/// a password written with an unescaped `@` (`app:p@ss@db`) is still a password.
static URL_USERINFO: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:([^/\s]+)@"));
/// `name=value`, after a separator; values may be quoted (`password='a b'`).
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"(?:^|[\s,;&?=:/-])([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*('(?:[^'\\]|\\.)*'|"[^"]*"|[^\s,;&]*)"#,
    )
});
/// `"name": "value"` members of JSON; the name decides.
static JSON_MEMBER: LazyLock<Regex> =
    LazyLock::new(|| regex(r#""([A-Za-z0-9_.-]+)"\s*:\s*"((?:[^"\\]|\\.)*)""#));
/// A whole argument `[domain/]user:password@host[:port]` (mysqlsh, impacket).
static BARE_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^(?:[A-Za-z0-9_.-]+/)?[A-Za-z0-9_.-]+:([^/].*)@[A-Za-z0-9_.-]+(?::[0-9]+)?$")
});

/// Ranges of `arg` that hold secrets, found by its text alone.
pub(super) fn scan(arg: &str) -> Vec<Range<usize>> {
    let mut marks = Vec::new();
    let group = |re: &Regex, index: usize, marks: &mut Vec<Range<usize>>| {
        for c in re.captures_iter(arg) {
            if let Some(m) = c.get(index).filter(|m| !m.is_empty()) {
                marks.push(m.range());
            }
        }
    };
    group(&PRIVATE_KEY, 1, &mut marks);
    for c in AUTHORIZATION.captures_iter(arg) {
        // A scheme alone (`Authorization:Basic`): its credentials are the next argument.
        if let Some(m) = c.get(1)
            && !AUTH_SCHEMES.contains(&m.as_str().to_ascii_lowercase().as_str())
        {
            marks.push(m.range());
        }
    }
    group(&COOKIE, 1, &mut marks);
    group(&URL_USERINFO, 1, &mut marks);
    headers(arg, &mut marks);
    assignments(arg, &mut marks);
    for c in JSON_MEMBER.captures_iter(arg) {
        if let (Some(name), Some(value)) = (c.get(1), c.get(2))
            && !value.is_empty()
            && names::is_secret_name(name.as_str())
        {
            marks.push(value.range());
        }
    }
    if let Some(m) = BARE_USERINFO.captures(arg).and_then(|c| c.get(1)) {
        marks.push(m.range());
    }
    marks.extend(shapes::scan(arg));
    marks
}

/// `Name: value` with a secret-looking name, except Authorization and Cookie (done
/// with their schemes) and the `user:` of a URL (`https://token:x@host`).
fn headers(arg: &str, marks: &mut Vec<Range<usize>>) {
    for c in HEADER.captures_iter(arg) {
        let (Some(name), Some(value)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let lower = name.as_str().to_ascii_lowercase();
        let in_url = arg[..name.start()].ends_with("//") || value.as_str().starts_with("//");
        if in_url
            || lower.ends_with("authorization")
            || lower.ends_with("cookie")
            || !names::is_secret_name(name.as_str())
        {
            continue;
        }
        marks.push(value.range());
    }
}

/// `name=value` pieces with a secret name (or a URL signature). A lone assignment that
/// is the whole argument (`DB_PASSWORD=a b`) hides everything after its `=`.
fn assignments(arg: &str, marks: &mut Vec<Range<usize>>) {
    let mut pieces = Vec::new();
    let mut at = 0;
    while let Some(c) = ASSIGNMENT.captures_at(arg, at) {
        let (Some(name), Some(value)) = (c.get(1), c.get(2)) else {
            break;
        };
        pieces.push((name, value));
        // Search again from this `=`: `--env=TOKEN=x` holds two pieces.
        at = name.end();
        if at >= arg.len() {
            break;
        }
    }
    // Where each piece's name starts after whitespace (a conninfo list: `host=h
    // password=x`); an assignment that opens the argument (`DB_PASSWORD=a,b c`) runs up
    // to the next such piece.
    let listed: Vec<usize> = pieces
        .iter()
        .map(|(name, _)| name.start())
        .filter(|&start| arg[..start].ends_with(char::is_whitespace))
        .collect();
    for (name, value) in pieces {
        let text = value.as_str();
        let secret = names::is_secret_name(name.as_str())
            || names::is_signature_param(name.as_str())
            || (name.as_str().eq_ignore_ascii_case("pwd")
                && !text.starts_with(['/', '~', '.'])
                && !text.is_empty());
        if !secret || names::is_switch(text) {
            continue;
        }
        let quoted = text.len() >= 2 && text.starts_with(['\'', '"']);
        let range = if quoted {
            value.start() + 1..value.end() - 1
        } else if name.start() == 0 || arg[..name.start()].ends_with('=') {
            let next = listed.iter().find(|&&start| start > value.start());
            value.start()..next.map_or(arg.len(), |&start| arg[..start].trim_end().len())
        } else {
            value.range()
        };
        if !range.is_empty() {
            marks.push(range);
        }
    }
}

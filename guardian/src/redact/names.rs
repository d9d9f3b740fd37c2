//! Which names (flags, variables, header names, JSON keys, bare words) announce a secret.

/// Name parts that make a value secret on their own.
const SECRET_PARTS: &[&str] = &[
    "key", "pass", "pwd", "pw", "auth", "cred", "creds", "jwt", "cookie", "psk",
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
/// Last parts that name where a secret lives, how it is used or what describes it, not
/// the secret itself (`--password-file`, `--token-ttl`, `--key-name`, `-key-shares`).
const BENIGN_LAST_PARTS: &[&str] = &[
    "file",
    "path",
    "dir",
    "method",
    "type",
    "mode",
    "length",
    "ttl",
    "timeout",
    "prompt",
    "helper",
    "cmd",
    "command",
    "name",
    "id",
    "hash",
    "fd",
    "stdin",
    "shares",
    "threshold",
    "verification",
    "url",
    "uri",
    "endpoint",
    "host",
    "port",
    "user",
    "username",
    "expiry",
    "expires",
    "algorithm",
    "usages",
    "groups",
    "description",
    "size",
    "count",
    "format",
    "version",
    "enabled",
    "required",
    "store",
    "env",
    "checking",
    "authentication",
    "authentications",
    "database",
    "db",
    "mechanism",
    "source",
];
/// Values that are switches, not secrets (`-o PasswordAuthentication=no`).
const SWITCH_VALUES: &[&str] = &["yes", "no", "true", "false", "on", "off"];

/// A switch value (`yes`, `false`...): kept after a secret-looking name.
pub(super) fn is_switch(value: &str) -> bool {
    SWITCH_VALUES.contains(&value.to_ascii_lowercase().as_str())
}
/// Names whose value is an identity, kept readable where a tool marks a whole
/// `name=value` as secret (`--from-literal=username=app`).
const IDENTITY_NAMES: &[&str] = &["user", "username", "login", "host", "hostname", "server"];

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

/// A key of `key value` pairs (`aws configure set KEY VALUE`, `npm config set KEY VALUE`):
/// its last identifier decides (`//registry.npmjs.org/:_authToken`).
pub(super) fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit([':', '/']).next().unwrap_or(key);
    is_secret_name(last)
}

/// A bare word that announces the next argument as a secret (`password NEW`,
/// `secret_access_key VALUE`, `wifi-sec.psk VALUE`): a secret name of two parts or more
/// joined the way keys are (`_`, `.`, camelCase), or one of the words that mean a
/// password. Commands (`passwd`) and dashed subcommands (`set-password`) are not.
pub(super) fn is_secret_word(word: &str) -> bool {
    if word.starts_with('-')
        || word.contains('-') && !word.contains('.')
        || !word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        || !is_secret_name(word)
    {
        return false;
    }
    let lower = word.to_ascii_lowercase();
    if lower.ends_with("passwd") {
        return false;
    }
    let parts = name_parts(word);
    parts.len() >= 2 || matches!(lower.as_str(), "password" | "passphrase" | "psk")
}

/// `name=value` pairs whose name is an identity (kept readable).
pub(super) fn is_identity_name(name: &str) -> bool {
    IDENTITY_NAMES.contains(&name.to_ascii_lowercase().as_str())
}

/// URL parameters that carry signatures (pre-signed S3 and Azure SAS URLs).
pub(super) fn is_signature_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "sig" || lower.ends_with("signature") || lower.ends_with("credential")
}

/// Lowercase parts of a name, split at punctuation and at lower-to-upper case changes.
pub(super) fn name_parts(name: &str) -> Vec<String> {
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

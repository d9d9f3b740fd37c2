//! Secrets recognisable by their shape alone: vendor token formats (after gitleaks'
//! public rule set, `config/gitleaks.toml`) and a bounded entropy check for bare tokens
//! that keeps hashes, digests, UUIDs, numbers, paths and URLs readable.

use std::{ops::Range, sync::LazyLock};

use regex::Regex;

use super::regex;

/// Vendor token shapes; the whole match is the secret unless group 1 narrows it.
static VENDOR: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b", // AWS access key id
        r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b",                     // GitHub
        r"|\bgithub_pat_[A-Za-z0-9_]{22,}\b",
        r"|\bglpat-[A-Za-z0-9_-]{20,}",        // GitLab personal
        r"|\bglrt-[A-Za-z0-9_-]{20,}",         // GitLab runner
        r"|\bGR1348941[A-Za-z0-9_-]{20,}",     // GitLab registration
        r"|\bxox[abposr]-[A-Za-z0-9-]{10,}",   // Slack
        r"|\bxapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+", // Slack app-level
        r"|\bAIza[0-9A-Za-z_-]{35}",           // Google API key
        r"|\bya29\.[0-9A-Za-z_-]{10,}",        // Google OAuth access
        r"|\b[sr]k_(?:live|test|prod)_[0-9A-Za-z]{10,99}\b", // Stripe
        r"|\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}", // OpenAI project keys
        r"|\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}", // OpenAI legacy
        r"|\bsk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{80,}", // Anthropic
        r"|\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}", // SendGrid
        r"|\bdo[por]_v1_[a-f0-9]{64}",         // DigitalOcean
        r"|\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}", // Shopify
        r"|\bSK[0-9a-fA-F]{32}\b",             // Twilio
        r"|\bnpm_[A-Za-z0-9]{36}\b",           // npm
        r"|\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}", // PyPI
        r"|\bhf_[A-Za-z]{34}\b",               // Hugging Face
        r"|\bdapi[a-f0-9]{32}(?:-\d)?\b",      // Databricks
        r"|\b[a-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}", // Terraform Cloud
        r"|\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", // age
        r"|\bhv[sb]\.[A-Za-z0-9_-]{24,}",      // Vault
        r"|\bgl(?:c|sa)_[A-Za-z0-9_+/=-]{32,}", // Grafana
        r"|\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}",  // Postman
        r"|\bdckr_pat_[A-Za-z0-9_-]{27,}",     // Docker Hub
        r"|\bLTAI[A-Za-z0-9]{20}\b",           // Alibaba
        r"|\b\d{8,10}:AA[A-Za-z0-9_-]{33}\b",  // Telegram bot
        r"|\btskey-(?:auth|api|client)-[A-Za-z0-9_-]{10,}", // Tailscale
        r"|\bsntry[su]_[A-Za-z0-9_=+/-]{10,}", // Sentry
        r"|\bey[A-Za-z0-9_-]{10,}\.ey[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*", // JWT
        r"|hooks\.slack\.com/(?:services|workflows)/([A-Za-z0-9+/]{20,})", // Slack webhook
    ))
});

/// Ranges of vendor tokens in `text`.
pub(super) fn scan(text: &str) -> Vec<Range<usize>> {
    VENDOR
        .captures_iter(text)
        .filter_map(|c| c.get(1).or_else(|| c.get(0)).map(|m| m.range()))
        .collect()
}

/// Shortest and longest bare token the entropy check looks at.
const MIN_TOKEN: usize = 20;
const MAX_TOKEN: usize = 512;
/// Shannon entropy (bits per character) above which a mixed-case, digit-bearing token
/// is taken for a key: random base64/base62 runs well above it, words and names below.
const MIN_BITS: f64 = 4.0;

/// The range of `arg` that is a bare high-entropy token: the whole argument, or the value
/// of a `name=value` argument. Hex strings (hashes, commit and container ids), digests,
/// UUIDs, paths, URLs, dotted names and anything outside the base64 alphabet are kept.
pub(super) fn high_entropy(arg: &str) -> Option<Range<usize>> {
    let start = match arg.split_once('=') {
        Some((name, _))
            if !name.is_empty()
                && name
                    .trim_start_matches('-')
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) =>
        {
            name.len() + 1
        }
        _ => 0,
    };
    let token = &arg[start..];
    let padded = token.ends_with('=') && token.len().is_multiple_of(4);
    let plausible = (MIN_TOKEN..=MAX_TOKEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-'))
        && !token.starts_with(['/', '-', '.', '~'])
        && (!token.contains('/') || padded)
        && token.bytes().any(|b| b.is_ascii_uppercase())
        && token.bytes().any(|b| b.is_ascii_lowercase())
        && token.bytes().any(|b| b.is_ascii_digit())
        && !is_hex_like(token);
    (plausible && entropy(token) >= MIN_BITS).then_some(start..arg.len())
}

/// Hex with optional dashes (hashes, UUIDs, container ids in any case).
fn is_hex_like(token: &str) -> bool {
    token.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Shannon entropy of `text` in bits per byte.
fn entropy(text: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in text.bytes() {
        counts[b as usize] += 1;
    }
    let len = text.len() as f64;
    counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = f64::from(n) / len;
            -p * p.log2()
        })
        .sum()
}

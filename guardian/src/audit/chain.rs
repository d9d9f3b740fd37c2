//! The hash chain: the canonical form of a record and its SHA-256.
//!
//! # Canonical form (what an auditor reimplements)
//!
//! A record is one JSON object. Its hash is the lowercase hex SHA-256 of the record
//! *without its `hash` member*, serialized as follows:
//!
//! - UTF-8, no whitespace outside strings.
//! - Object members sorted by key, keys compared as byte strings (UTF-8), ascending;
//!   the same at every nesting level. Array elements keep their order.
//! - Strings: `"` and `\` become `\"` and `\\`; the control characters U+0008, U+0009,
//!   U+000A, U+000C, U+000D become `\b`, `\t`, `\n`, `\f`, `\r`; every other character
//!   below U+0020 becomes `\u00XX` with lowercase hex; everything else (including `/`,
//!   U+007F and all non-ASCII) is written as its UTF-8 bytes.
//! - `true`, `false`, `null` as such. Integers in plain decimal (`-` for negatives, no
//!   leading zeros, no exponent). The only non-integer field (`time_to_exit_s`) is written
//!   as the shortest decimal that reads back as the same IEEE-754 double, in the form
//!   Rust's `serde_json` prints (`0.25`, `12.0`, `1.5e-7`).
//!
//! The writer emits exactly this canonical form and puts `"hash":"<64 hex>"` as the
//! last member, then a newline. So the hash can also be recomputed from the raw line:
//! drop the trailing `,"hash":"<64 hex>"}` and the newline, append `}`, and hash those
//! bytes. (`guardian audit verify` instead parses each line and re-serializes it, so it
//! does not depend on member order or whitespace.)
//!
//! Every record has `v` (format version, 1), `seq` (1 for the first record ever, then
//! +1 per record), `time` (RFC 3339, UTC), `host`, `kind` (`"intent"` or `"outcome"`),
//! `prev_hash` (the `hash` of the record before it; 64 zeros for the first record ever)
//! and `hash`, besides the fields of the intent or outcome.

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// `prev_hash` of the first record ever.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Format version written in every record's `v`.
pub const FORMAT_VERSION: u64 = 1;

/// Appends the canonical form of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => out.extend_from_slice(number.to_string().as_bytes()),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, None, out),
    }
}

/// Writes an object with sorted keys, leaving out the member named `skip`.
fn write_object(map: &Map<String, Value>, skip: Option<&str>, out: &mut Vec<u8>) {
    let mut members: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(key, _)| Some(key.as_str()) != skip)
        .collect();
    members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (index, (key, value)) in members.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_canonical(value, out);
    }
    out.push(b'}');
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &byte in text.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x00..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

/// The canonical bytes of a record without its `hash` member.
pub fn canonical_without_hash(record: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_object(record, Some("hash"), &mut out);
    out
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash a record should carry: over its canonical form without `hash`.
pub fn record_hash(record: &Map<String, Value>) -> String {
    sha256_hex(&canonical_without_hash(record))
}

/// Seals a record (which must not hold `hash`): returns its line, canonical form with
/// `hash` appended as the last member and a newline, and the hash.
pub fn seal(record: &Map<String, Value>) -> (Vec<u8>, String) {
    let mut line = canonical_without_hash(record);
    let hash = sha256_hex(&line);
    // The canonical form ends with '}'; the record always has members, so a comma follows.
    line.pop();
    line.extend_from_slice(b",\"hash\":\"");
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}\n");
    (line, hash)
}

/// True for 64 lowercase hex digits.
pub fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn keys_are_sorted_at_every_level_and_hash_is_left_out() {
        let record = object(json!({
            "z": 1, "a": {"y": [3, {"b": null, "a": true}], "x": "s"}, "hash": "ignored"
        }));
        let canonical = String::from_utf8(canonical_without_hash(&record)).expect("utf8");
        assert_eq!(
            canonical,
            r#"{"a":{"x":"s","y":[3,{"a":true,"b":null}]},"z":1}"#
        );
    }

    #[test]
    fn strings_are_escaped_like_serde_json() {
        let text = "q\" b\\ \u{8}\t\n\u{c}\r \u{1} \u{1f} / \u{7f} é 🦀";
        let mut ours = Vec::new();
        write_string(text, &mut ours);
        let theirs = serde_json::to_vec(&text).expect("serialize");
        assert_eq!(
            String::from_utf8(ours).expect("utf8"),
            String::from_utf8(theirs).expect("utf8")
        );
    }

    #[test]
    fn numbers_round_trip_through_parse() {
        for number in ["0", "-5", "18446744073709551615", "0.25", "12.0", "1.5e-7"] {
            let value: Value = serde_json::from_str(number).expect("parse");
            let mut out = Vec::new();
            write_canonical(&value, &mut out);
            assert_eq!(String::from_utf8(out).expect("utf8"), number);
        }
    }

    #[test]
    fn sealed_line_hashes_to_its_raw_bytes_minus_the_hash_member() {
        let record = object(json!({"seq": 1, "kind": "intent", "cmdline": "a \"b\""}));
        let (line, hash) = seal(&record);
        let text = String::from_utf8(line).expect("utf8");
        assert!(text.ends_with(&format!(",\"hash\":\"{hash}\"}}\n")));
        let stripped = format!("{}}}", &text[..text.len() - ",\"hash\":\"\"}\n".len() - 64]);
        assert_eq!(sha256_hex(stripped.as_bytes()), hash);
        let parsed = object(serde_json::from_str(&text).expect("parse"));
        assert_eq!(record_hash(&parsed), hash);
        assert!(is_hash(&hash));
        assert!(is_hash(GENESIS_HASH));
    }
}

#[cfg(test)]
mod proptests;

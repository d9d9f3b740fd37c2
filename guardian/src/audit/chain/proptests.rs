//! Properties of the canonical form over arbitrary records: it is JSON that reads back
//! as the same record, re-serializing what was read gives the same bytes (what `audit
//! verify` relies on), keys are sorted at every level, and a sealed line's hash is the
//! hash of its bytes without the hash member.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{canonical_without_hash, record_hash, seal, write_canonical};

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Durations as the outcome records carry them, and any finite double.
        (0.0f64..1e6).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[\\x00-\\x1f\"\\\\/\\x7f]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Records have members (the writer always puts `v`, `seq`, ...): `seal` relies on it.
fn record() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,12}", json(), 1..10)
        .prop_map(|map| map.into_iter().filter(|(key, _)| key != "hash").collect())
}

fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn keys_sorted(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().all(keys_sorted),
        Value::Object(map) => {
            let keys: Vec<&String> = map.keys().collect();
            keys.windows(2)
                .all(|pair| pair[0].as_bytes() < pair[1].as_bytes())
                && map.values().all(keys_sorted)
        }
        _ => true,
    }
}

proptest! {
    #[test]
    fn canonical_form_reads_back_and_is_a_fixed_point(value in json()) {
        let bytes = canonical(&value);
        let text = std::str::from_utf8(&bytes).expect("canonical form is UTF-8");
        let read: Value = serde_json::from_str(text).expect("canonical form is JSON");
        prop_assert_eq!(canonical(&read), bytes.clone(), "re-serializing {} changed it", text);
        prop_assert!(keys_sorted(&read));
    }

    #[test]
    fn a_sealed_line_hashes_to_its_own_bytes(record in record()) {
        let (line, hash) = seal(&record);
        let text = std::str::from_utf8(&line).expect("UTF-8 line");
        prop_assert!(text.ends_with("\"}\n"), "{}", text);
        let read: Map<String, Value> = serde_json::from_str(text).expect("a sealed line is JSON");
        prop_assert_eq!(read.get("hash").and_then(Value::as_str), Some(hash.as_str()));
        prop_assert_eq!(record_hash(&read), hash.clone());
        // The raw-line recipe from the module docs gives the same bytes.
        let tail = format!(",\"hash\":\"{hash}\"}}\n");
        let mut raw = text.strip_suffix(&tail).expect("the hash member ends the line").as_bytes().to_vec();
        raw.push(b'}');
        prop_assert_eq!(raw, canonical_without_hash(&read));
    }
}

/// Found by the property above: without serde_json's `float_roundtrip` this double reads
/// back one ULP off, and `audit verify` would call an untouched record tampered.
#[test]
fn a_double_reads_back_to_the_same_canonical_bytes() {
    let value: Value =
        serde_json::from_str(r#"{"time_to_exit_s":-3.6382588481291755e-47}"#).expect("parse");
    assert_eq!(
        String::from_utf8(canonical(&value)).expect("UTF-8"),
        r#"{"time_to_exit_s":-3.6382588481291755e-47}"#
    );
}

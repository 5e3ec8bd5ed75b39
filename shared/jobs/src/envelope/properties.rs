//! Property tests of the envelope decoder on hostile bodies: whatever a queue delivers (random
//! bytes, envelopes with wrong, missing, duplicated or huge fields, truncated or bit-flipped
//! ones, JSON nested far deeper than any stack) must come back as an envelope or an error,
//! never a panic, and without allocating more than a small multiple of the body.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use serde::{Deserialize, Serialize};
use testkit::mutation::{mutated, mutations};
use testkit::{cases, peak_alloc::peak_bytes_during};

use super::IncomingEnvelope;

/// A typical job payload: an id and a user-supplied string (any Unicode).
#[derive(Debug, Serialize, Deserialize)]
struct ResizeJob {
    image_id: Uuid,
    user_id: String,
}

/// Cases per property unless `PROPTEST_CASES` says otherwise; the five properties take two to
/// five seconds together in a debug build on two cores.
const CASES: u32 = 3_000;

/// The most a decode may allocate for a body of `len` bytes (checked against every case).
///
/// What the decoder keeps or builds is each at most the body's size: the scratch copy of a
/// string with escapes (`Vec` growth can double it), an owned `kind`, the payload's `user_id`,
/// and the one-byte-per-level stack `serde_json` keeps while skipping a nested value. The
/// largest item is an error that quotes an offending string with `{:?}`, which writes a
/// 2-byte unprintable character as 7 (`\u{378}`), built in a `String` that may double: 7×
/// the body. 8× covers all of them with room for the rest; the constant is the fixed cost
/// of a decode (the boxed error, chrono's and uuid's parsers), measured under 1 KiB.
fn envelope_alloc_bound(len: usize) -> usize {
    8 * len + 16 * 1024
}

/// Decodes `body` the way the worker does (envelope, then the payload as its kind's type),
/// and checks the peak allocation against the bound.
fn decode_within_bound(body: &[u8]) -> Result<(), TestCaseError> {
    let (_, peak) = peak_bytes_during(|| {
        let envelope = IncomingEnvelope::parse(body);
        let job = envelope
            .as_ref()
            .ok()
            .map(|envelope| serde_json::from_str::<ResizeJob>(envelope.payload.get()));
        (envelope, job)
    });
    let bound = envelope_alloc_bound(body.len());
    prop_assert!(
        peak <= bound,
        "{peak} bytes allocated for a {}-byte body (bound {bound})",
        body.len()
    );
    Ok(())
}

/// Any JSON value, nested a few levels, with strings of any Unicode.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::from),
            vec((any::<String>(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// JSON text no `Value` can hold (numbers of hundreds of digits or huge exponents, arrays or
/// objects nested thousands deep, closed or left open), and strings of unprintable characters.
fn hostile_json() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,400}",
        "-?[0-9]{1,20}\\.[0-9]{1,400}",
        "-?[0-9]{1,5}[eE][+-]?[0-9]{1,12}",
        Just("-0".to_owned()),
        // Characters that `{:?}` escapes at length, for errors that quote the string.
        "[\u{378}\u{300}\u{7f}\u{e0001}a]{1,2000}".prop_map(|text| quoted(&text)),
        (1..20_000usize, prop::bool::ANY, prop::bool::ANY).prop_map(|(depth, array, closed)| {
            let (open, close) = if array { ("[", "]") } else { ("{\"a\":", "}") };
            let tail = if closed {
                close.repeat(depth)
            } else {
                String::new()
            };
            format!("{}0{tail}", open.repeat(depth))
        }),
    ]
}

fn any_json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => json_value().prop_map(|value| value.to_string()),
        1 => hostile_json(),
    ]
}

fn quoted(text: &str) -> String {
    Value::from(text).to_string()
}

/// The five fields of a valid envelope, as `(name, JSON text)`, with a [`ResizeJob`] payload.
fn valid_fields() -> impl Strategy<Value = Vec<(String, String)>> {
    let seconds = -62_167_219_200i64..=253_402_300_799; // years 0000 to 9999
    (
        any::<u128>(),
        "[a-z0-9_]{1,64}",
        any::<u32>(),
        (seconds, 0..1_000_000_000u32),
        (any::<u128>(), any::<String>()),
    )
        .prop_map(|(id, kind, version, (secs, nanos), (image, user))| {
            let created_at = DateTime::<Utc>::from_timestamp(secs, nanos).unwrap();
            let payload = ResizeJob {
                image_id: Uuid::from_u128(image),
                user_id: user,
            };
            vec![
                ("id".into(), quoted(&Uuid::from_u128(id).to_string())),
                ("kind".into(), quoted(&kind)),
                ("version".into(), version.to_string()),
                ("created_at".into(), quoted(&created_at.to_rfc3339())),
                ("payload".into(), serde_json::to_string(&payload).unwrap()),
            ]
        })
}

/// A valid envelope's fields, some replaced by any JSON, some dropped, some extra or repeated.
fn envelope_fields() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("id".to_owned()),
        Just("kind".to_owned()),
        Just("version".to_owned()),
        Just("created_at".to_owned()),
        Just("payload".to_owned()),
        any::<String>(),
    ];
    let edit = prop_oneof![
        6 => Just(None),
        2 => any_json_text().prop_map(|text| Some(Some(text))),
        1 => Just(Some(None)),
    ];
    (
        valid_fields(),
        vec(edit, 5),
        vec((name, any_json_text()), 0..3),
    )
        .prop_map(|(fields, edits, extra)| {
            let mut fields: Vec<_> = fields
                .into_iter()
                .zip(edits)
                .filter_map(|((name, text), edit)| match edit {
                    None => Some((name, text)),
                    Some(replacement) => replacement.map(|text| (name, text)),
                })
                .collect();
            fields.extend(extra);
            fields
        })
}

fn object(fields: &[(String, String)]) -> String {
    let fields: Vec<String> = fields
        .iter()
        .map(|(name, text)| format!("{}:{text}", quoted(name)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn arbitrary_bytes_never_panic_the_envelope_decoder(body in vec(any::<u8>(), 0..1024)) {
        decode_within_bound(&body)?;
    }

    #[test]
    fn valid_envelopes_decode_to_their_fields(fields in valid_fields()) {
        let body = object(&fields);
        let envelope = IncomingEnvelope::parse(body.as_bytes()).unwrap();
        prop_assert_eq!(quoted(&envelope.id.to_string()), fields[0].1.clone());
        prop_assert_eq!(quoted(&envelope.kind), fields[1].1.clone());
        prop_assert_eq!(envelope.version.to_string(), fields[2].1.clone());
        prop_assert_eq!(envelope.payload.get(), fields[4].1.clone());
        serde_json::from_str::<ResizeJob>(envelope.payload.get()).unwrap();
        decode_within_bound(body.as_bytes())?;
    }

    #[test]
    fn envelopes_with_hostile_fields_decode_or_fail_cleanly(fields in envelope_fields()) {
        decode_within_bound(object(&fields).as_bytes())?;
    }

    #[test]
    fn mutated_envelopes_decode_or_fail_cleanly(
        fields in envelope_fields(),
        edits in mutations(6),
    ) {
        decode_within_bound(&mutated(object(&fields).as_bytes(), &edits))?;
    }

    #[test]
    fn json_shaped_noise_decodes_or_fails_cleanly(
        tokens in vec(
            prop_oneof![
                Just("{"), Just("}"), Just("["), Just("]"), Just(":"), Just(","), Just("\""),
                Just("\\u"), Just("\\ud800"), Just("\"id\""), Just("\"kind\""),
                Just("\"version\""), Just("\"created_at\""), Just("\"payload\""), Just("null"),
                Just("1e999"), Just("-"), Just("0"), Just("true"), Just(" "),
            ],
            0..256,
        )
    ) {
        decode_within_bound(tokens.concat().as_bytes())?;
    }
}

#[test]
fn an_error_quoting_a_long_unprintable_string_stays_within_the_bound() {
    // The worst case of the bound: a wrong-typed field whose string the error message quotes
    // with every character escaped (2 bytes of U+0378 become the 7 of `\u{378}`).
    for count in [1, 10, 1_000, 100_000] {
        let body = format!("{{\"version\":{}}}", quoted(&"\u{378}".repeat(count)));
        let error = IncomingEnvelope::parse(body.as_bytes()).err().unwrap();
        assert!(error.to_string().contains("\\u{378}"), "{error}");
        decode_within_bound(body.as_bytes()).unwrap();
    }
}

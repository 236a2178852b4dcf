//! Fuzzing the two functions every webhook goes through first: the signature
//! check and the payload parser, seeded from the real payloads of the
//! conformance corpus (`../shared/whatsapp-payloads`).
//!
//! A property-based harness (proptest) rather than a coverage-guided fuzzer:
//! cargo-fuzz and libFuzzer need a nightly toolchain, which cannot be fetched
//! here, and bolero's stable mode is random generation too. Each case takes a
//! corpus payload and mutates it the way a fuzzer would (bytes flipped, inserted,
//! deleted, the body cut short, spliced with another payload, JSON values
//! replaced by others of other types); proptest shrinks a failure to a small case.
//! The test command runs 2 000 cases of each; for a longer run:
//! `PROPTEST_CASES=200000 cargo nextest run -p pulse-tests --test fuzz`.

use std::sync::OnceLock;

use chrono::Utc;
use proptest::prelude::*;
use pulse_shared::event::{events_from_body, EVENT_TYPES};
use pulse_shared::signature::{sign, verify};
use pulse_tests::corpus;
use serde_json::Value;

fn seeds() -> &'static Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| corpus().into_iter().map(|(_, bytes)| bytes).collect())
}

/// A byte-level change, as a mutating fuzzer makes.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Truncate {
        at: usize,
    },
    Splice {
        at: usize,
        other: usize,
        from: usize,
        len: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), any::<usize>(), any::<usize>(), 1usize..512).prop_map(
            |(at, other, from, len)| Mutation::Splice {
                at,
                other,
                from,
                len
            }
        ),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len().max(1);
        match *mutation {
            Mutation::Flip { at, bit } => {
                if let Some(byte) = bytes.get_mut(at % len) {
                    *byte ^= 1 << bit;
                }
            }
            Mutation::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
            Mutation::Delete { at, len: n } => {
                let start = at % len;
                let end = (start + n).min(bytes.len());
                bytes.drain(start.min(end)..end);
            }
            Mutation::Truncate { at } => bytes.truncate(at % len),
            Mutation::Splice {
                at,
                other,
                from,
                len: n,
            } => {
                let other = &seeds()[other % seeds().len()];
                let from = from % other.len().max(1);
                let piece = &other[from..(from + n).min(other.len())];
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, piece.iter().copied());
            }
        }
    }
    bytes
}

/// Replaces JSON values of a payload by values of other types, deep inside it,
/// where a byte-level mutation would rarely keep the JSON valid.
fn retype(value: &mut Value, choices: &mut impl Iterator<Item = u8>) {
    let Some(choice) = choices.next() else { return };
    match value {
        Value::Object(map) => {
            for item in map.values_mut() {
                retype(item, choices);
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                retype(item, choices);
            }
        }
        _ => {
            *value = match choice % 12 {
                0 => Value::Null,
                1 => Value::Bool(true),
                2 => Value::from(-1),
                3 => Value::from(u64::MAX),
                4 => Value::from(1e308),
                5 => Value::from(""),
                6 => Value::from("99999999999"),
                7 => Value::Array(vec![]),
                8 => serde_json::json!({"a": [1, {"b": null}]}),
                9 => Value::from("\u{0}\u{202e}<b>"),
                _ => return,
            }
        }
    }
}

/// What any body must get from the parser: an answer, never a panic; and when it
/// is a webhook, events that are whole.
fn parse_and_check(body: &[u8]) {
    let Ok(events) = events_from_body(body, Utc::now()) else {
        return;
    };
    for received in events {
        let event = &received.event;
        assert!(!event.id.is_empty());
        assert!(EVENT_TYPES.contains(&event.kind.type_name()));
        // What is stored as raw is valid JSON, and what is shown serialises.
        serde_json::from_str::<Value>(received.raw.get()).expect("raw updates are JSON");
        serde_json::to_string(&pulse_shared::mask::public_event(event.clone())).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn mutated_payloads_are_parsed_or_refused_never_a_panic(
        seed in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let bytes = apply(seeds()[seed % seeds().len()].clone(), &mutations);
        parse_and_check(&bytes);
    }

    #[test]
    fn payloads_with_values_of_other_types_are_parsed_or_refused_never_a_panic(
        seed in any::<usize>(),
        choices in prop::collection::vec(any::<u8>(), 1..200),
    ) {
        let seed = &seeds()[seed % seeds().len()];
        if let Ok(mut value) = serde_json::from_slice::<Value>(seed) {
            retype(&mut value, &mut choices.into_iter());
            parse_and_check(&serde_json::to_vec(&value).unwrap());
        }
    }

    #[test]
    fn only_the_exact_signature_of_the_exact_body_passes(
        seed in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..4),
        header in any::<Vec<u8>>(),
        secret in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let body = seeds()[seed % seeds().len()].clone();
        let signature = sign(&secret, &body);
        prop_assert!(verify(&secret, &body, Some(&signature)).is_ok());
        let changed = apply(body.clone(), &mutations);
        if changed != body {
            prop_assert!(verify(&secret, &changed, Some(&signature)).is_err());
        }
        // Any header at all: an answer, never a panic; garbage never passes.
        let header = String::from_utf8_lossy(&header);
        if header != signature {
            prop_assert!(verify(&secret, &body, Some(&header)).is_err());
        }
        prop_assert!(verify(&secret, &body, None).is_err());
    }
}

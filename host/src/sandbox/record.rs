//! What a guest's record must be before it is archived and posted as its bytes (behaviour
//! §3): one JSON object that every reader reads the same way. JSON leaves three things to
//! the reader, and the data lake has several (Python's `json` in the WES API, Athena's
//! OpenX SerDe, DuckDB): how deep it nests, which of two equal keys wins, and what a lone
//! surrogate escape (`"\ud800"`) means. The host refuses all three, so that the record the
//! host logs is the record each of them reads.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The deepest a record may nest, counting the record itself as 1 (the bundled guest's are 3
/// deep: the record, `log_urls`, its `task_logs`; an output list inside `output_mapping`
/// too). Python's `json` stops at about 1,000, DuckDB and Athena have bounds of their own;
/// 64, the bound on events (behaviour §1), leaves a guest room and every reader a margin.
pub const RECORD_DEPTH: usize = 64;

/// serde_json's token for a number it keeps with its digits (`arbitrary_precision`): a
/// number reaches a visitor as a map of this one key.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Checks a guest's record: one JSON object, at most [`RECORD_DEPTH`] deep, no key twice
/// in any object (keys compared as decoded), no lone surrogate escape in any string or key.
/// The error says which, and where.
pub fn check(record: &str) -> Result<(), String> {
    if !record.trim_start().starts_with('{') {
        return match serde_json::from_str::<IgnoredAny>(record) {
            Ok(_) => Err("it is not a JSON object".into()),
            Err(e) => Err(format!("it is not JSON ({e})")),
        };
    }
    lone_surrogate(record.as_bytes())?;
    let mut de = serde_json::Deserializer::from_str(record);
    let checked = Strict { depth: 1, path: String::new() }.deserialize(&mut de).and_then(|()| de.end());
    checked.map_err(|e| {
        let text = e.to_string();
        if text.starts_with("it ") { text } else { format!("it is not JSON ({text})") }
    })
}

/// A `\uD800`-`\uDFFF` escape that is not a high surrogate followed by a low one. In valid
/// JSON a backslash only ever starts an escape inside a string, so the bytes can be read
/// without parsing them.
fn lone_surrogate(bytes: &[u8]) -> Result<(), String> {
    let unit = |at: usize| -> Option<u16> {
        let hex = bytes.get(at..at + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match unit(i) {
            Some(high @ 0xD800..=0xDBFF) => match unit(i + 6) {
                Some(0xDC00..=0xDFFF) => i += 12,
                _ => return Err(lone(high, i)),
            },
            Some(low @ 0xDC00..=0xDFFF) => return Err(lone(low, i)),
            _ => i += 2,
        }
    }
    Ok(())
}

fn lone(unit: u16, at: usize) -> String {
    format!("it holds a lone surrogate escape (\\u{unit:04x} at byte {at}), which readers decode differently")
}

/// A value at `path` (`$`, `$.log_urls`, `$.output_mapping[2]`), `depth` levels deep.
struct Strict {
    depth: usize,
    path: String,
}

impl Strict {
    fn child(&self, step: impl fmt::Display) -> Strict {
        Strict { depth: self.depth + 1, path: format!("{}{step}", self.path) }
    }

    /// An object or array here: within the bound?
    fn enter<E: de::Error>(&self) -> Result<(), E> {
        if self.depth > RECORD_DEPTH {
            return Err(E::custom(format!("it nests deeper than {RECORD_DEPTH} levels (at ${})", self.path)));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.enter()?;
        let mut i = 0usize;
        loop {
            let item = self.child(format_args!("[{i}]"));
            if seq.next_element_seed(item)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.enter()?;
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == NUMBER_TOKEN && seen.is_empty() {
                // A number, with its digits (or an object with that key, checked as any).
                map.next_value::<IgnoredAny>()?;
                seen.insert(key);
                continue;
            }
            let value = self.child(format_args!(".{}", printable(&key)));
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!(
                    "it has the key {:?} twice in one object (at ${}), which readers resolve differently",
                    printable(&key),
                    self.path
                )));
            }
            map.next_value_seed(value)?;
        }
        Ok(())
    }
}

/// A key as an error shows it: at most 64 characters, control characters escaped.
fn printable(key: &str) -> String {
    key.chars().take(64).flat_map(char::escape_debug).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    }

    #[test]
    fn a_record_is_one_json_object() {
        assert!(check(r#" {"a":[1,{"b":null}],"n":1e400,"m":-0.10}"#).is_ok());
        for bad in ["", "[1]", "\"x\"", "{", "{} {}", "{\"a\":}", "null"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn depth_is_bounded_and_the_error_says_where() {
        assert!(check(&nested(RECORD_DEPTH)).is_ok());
        let e = check(&nested(RECORD_DEPTH + 1)).unwrap_err();
        assert!(e.starts_with("it nests deeper than 64 levels (at $.a.a."), "{e}");
        // Deep enough to break a recursive reader: refused at the bound, without recursing.
        let e = check(&format!("{{\"x\":{}1{}}}", "[".repeat(200_000), "]".repeat(200_000))).unwrap_err();
        assert!(e.contains("deeper than 64"), "{e}");
        let arrays = format!("{{\"x\":{}1{}}}", "[".repeat(63), "]".repeat(63));
        assert!(check(&arrays).is_ok(), "63 arrays in the record: 64 levels");
    }

    #[test]
    fn a_key_twice_is_refused_at_any_level() {
        let e = check(r#"{"status":"COMPLETED","status":"FAILED"}"#).unwrap_err();
        assert!(e.contains("the key \"status\" twice") && e.contains("at $)"), "{e}");
        let e = check(r#"{"log_urls":{"task_logs":{"a":"1","b":"2","a":"3"}}}"#).unwrap_err();
        assert!(e.contains("\"a\" twice") && e.contains("$.log_urls.task_logs"), "{e}");
        // The same key once escaped, once not, is the same key.
        assert!(check(r#"{"st\u0061tus":1,"status":2}"#).unwrap_err().contains("twice"));
        let e = check(r#"{"l":[{"k":1},{"k":2,"k":3}]}"#).unwrap_err();
        assert!(e.contains("$.l[1]"), "{e}");
        // Equal keys in different objects are fine.
        assert!(check(r#"{"a":{"k":1},"b":{"k":1},"k":[{"k":1},{"k":2}]}"#).is_ok());
    }

    #[test]
    fn a_lone_surrogate_is_refused_a_pair_is_not() {
        for bad in [r#"{"a":"\ud800"}"#, r#"{"a":"x\udc00y"}"#, r#"{"\ud83d":1}"#, r#"{"a":["\ud83dx"]}"#] {
            let e = check(bad).unwrap_err();
            assert!(e.contains("lone surrogate"), "{bad}: {e}");
        }
        assert!(check(r#"{"a":"\ud83d\ude00","b":"😀"}"#).is_ok());
    }

    #[test]
    fn numbers_keep_their_place_whatever_their_digits() {
        assert!(check(r#"{"a":123456789012345678901234567890,"b":[1.5e-300,-0]}"#).is_ok());
        assert!(check(r#"{"$serde_json::private::Number":"1","$serde_json::private::Number":"2"}"#).is_err());
    }
}

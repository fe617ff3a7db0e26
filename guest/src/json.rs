//! Parsing JSON documents with a nesting guard, so that hostile depth is a clear error
//! rather than a stack overflow, whatever the parser does.

#[allow(unused_imports)]
use crate::prelude::*;

use serde_json::Value;

/// The deepest nesting accepted in any document the guest parses. Real events nest three
/// levels; serde_json's own limit (128) stays behind this one as a second line.
pub const MAX_DEPTH: u32 = 64;

/// Why a document could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Not JSON, or not UTF-8: the parser's message.
    Invalid(String),
}

/// Parses `bytes` as one JSON value.
pub fn parse(bytes: &[u8]) -> Result<Value, ParseError> {
    if nesting_exceeds(bytes, MAX_DEPTH) {
        return Err(ParseError::TooDeep);
    }
    serde_json::from_slice(bytes).map_err(|e| ParseError::Invalid(e.to_string()))
}

/// True when arrays and objects in `bytes` nest deeper than `limit`. A linear scan that
/// skips strings; it does not validate, the parser does.
fn nesting_exceeds(bytes: &[u8], limit: u32) -> bool {
    let mut depth = 0u32;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The JSON type of `value`, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `s` cut to at most `max` characters (Unicode scalar values, as Python's slicing counts).
pub fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_at_the_limit_parses_and_beyond_it_is_too_deep() {
        let ok = "[".repeat(MAX_DEPTH as usize) + &"]".repeat(MAX_DEPTH as usize);
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = "[".repeat(MAX_DEPTH as usize + 1) + &"]".repeat(MAX_DEPTH as usize + 1);
        assert_eq!(parse(deep.as_bytes()), Err(ParseError::TooDeep));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let s = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert!(parse(s.as_bytes()).is_ok());
    }

    #[test]
    fn hundred_thousand_deep_is_rejected_without_recursing() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse(deep.as_bytes()), Err(ParseError::TooDeep));
    }

    #[test]
    fn invalid_utf8_is_invalid_json() {
        let err = parse(b"{\"a\":\"\xff\xfe\"}").unwrap_err();
        assert!(matches!(err, ParseError::Invalid(ref m) if m.contains("unicode")), "{err:?}");
    }

    #[test]
    fn cut_counts_characters_not_bytes() {
        assert_eq!(cut("héllo", 2), "hé");
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(cut("", 0), "");
        assert_eq!(cut("ééé", 0), "");
    }

    #[test]
    fn numbers_keep_their_digits() {
        // arbitrary_precision: no rounding through f64, no range errors; serde_json only
        // spells an exponent with its sign.
        let v = parse(br#"{"a":1.50,"b":1e400,"c":12345678901234567890123}"#).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"a":1.50,"b":1e+400,"c":12345678901234567890123}"#);
    }
}

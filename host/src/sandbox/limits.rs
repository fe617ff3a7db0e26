//! What one event may cost a guest, and how a guest's text is made safe to log.

use std::time::Duration;

/// The most linear memory a guest may use, in bytes, unless [`Limits`] says otherwise.
pub const GUEST_MEMORY_MAX: u64 = 64 << 20;

/// How often the epoch ticks; the time limit is counted in ticks.
pub(super) const TICK: Duration = Duration::from_millis(5);

/// What one event may cost a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, in bytes.
    pub memory: u64,
    /// Wall-clock time per call.
    pub time: Duration,
    /// The record's size, in bytes.
    pub output: usize,
    /// Captured stderr, in bytes; the rest is dropped.
    pub stderr: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory: GUEST_MEMORY_MAX, time: Duration::from_secs(2), output: 8 << 20, stderr: 16 << 10 }
    }
}

/// A guest's text, made fit for one log line: at most `max` characters (an ellipsis and the
/// number of characters left out mark a cut), control characters escaped (`\n`, `\u{1b}`,
/// ...), so that a guest can neither flood a log nor forge a line of it.
pub fn plain_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 8);
    for (kept, (i, c)) in text.char_indices().enumerate() {
        if kept == max {
            let rest = text[i..].chars().count();
            out.push_str(&format!("... ({rest} more characters)"));
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_and_control_characters_are_escaped() {
        assert_eq!(plain_text("a\nb\r\tc\u{1b}[31m", 100), "a\\nb\\r\\tc\\u{1b}[31m");
        assert_eq!(plain_text("abcdef", 3), "abc... (3 more characters)");
        assert_eq!(plain_text("ééé", 3), "ééé");
        assert_eq!(plain_text("x\u{202e}y", 10), "x\\u{202e}y");
        assert!(!plain_text(&"I\n".repeat(1000), 50).contains('\n'));
    }
}

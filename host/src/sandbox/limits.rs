//! What one event may cost a guest, and how a guest's text is made safe to log.

use std::time::Duration;

/// The most linear memory a guest may use, in bytes, unless [`Limits`] says otherwise.
pub const GUEST_MEMORY_MAX: u64 = 64 << 20;

/// How often the epoch ticks: a computing guest yields to the executor, and is checked
/// against its deadline, this often.
pub(super) const TICK: Duration = Duration::from_millis(5);

/// What one event may cost a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, in bytes.
    pub memory: u64,
    /// Wall-clock time per call, host calls included.
    pub time: Duration,
    /// Captured stderr, in bytes; the rest is dropped.
    pub stderr: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory: GUEST_MEMORY_MAX, time: Duration::from_secs(2), stderr: 16 << 10 }
    }
}

/// A guest's text, made fit for one log line: control characters escaped (`\n`,
/// `\u{1b}`, ...), so that a guest can neither forge a line of the log nor send escape
/// sequences to a terminal, and at most `max` characters once escaped (an ellipsis and the
/// number of characters left out mark a cut), so that it cannot flood the log either.
pub fn plain_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 32);
    let mut width = 0;
    for (i, c) in text.char_indices() {
        let escaped = match c {
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                c.escape_unicode().to_string()
            }
            c => c.to_string(),
        };
        let w = escaped.chars().count();
        if width + w > max {
            let rest = text[i..].chars().count();
            out.push_str(&format!("... ({rest} more characters)"));
            break;
        }
        out.push_str(&escaped);
        width += w;
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
        assert_eq!(plain_text("ab\u{1b}cd", 4), "ab... (3 more characters)", "the bound is on the escaped text");
        assert_eq!(plain_text("ééé", 3), "ééé");
        assert_eq!(plain_text("x\u{202e}y", 10), "x\\u{202e}y");
        assert!(!plain_text(&"I\n".repeat(1000), 50).contains('\n'));
    }
}

//! Text from files on its way to a terminal. A manifest, a bundle, an approval file, a QR payload or a
//! device answer can carry escape sequences (`ESC[2J` clears the screen and can paint a fake verdict over
//! a refused one), carriage returns and cursor moves that erase what came before, or Unicode bidi
//! overrides and zero-width characters that make text read differently from what it is. Nothing from
//! outside reaches a terminal raw: control characters are shown as visible escapes (`\x1b`), and bidi
//! controls and invisible characters as `<U+202E>`-style markers.

use std::borrow::Cow;

/// Unicode characters that change how surrounding text is displayed or are invisible: bidi embeddings,
/// overrides and isolates, directional marks, zero-width characters, the word joiner, the BOM, soft
/// hyphen, and the Mongolian vowel separator.
pub fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Whether `c` must not reach a terminal as it is (other than newline and tab).
pub fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || is_invisible_or_bidi(c)
}

/// The text with every control character other than newline and tab shown as a visible escape
/// (`\x1b`, `\r`, `\x7f`, `\u{9b}`), and every bidi control or invisible character as `<U+202E>`.
/// Borrowed when there is nothing to change.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        push_visible(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`sanitize`] for one line: newlines and tabs are shown as escapes too.
pub fn sanitize_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) || c == '\n' || c == '\t') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => push_visible(&mut out, c),
        }
    }
    Cow::Owned(out)
}

fn push_visible(out: &mut String, c: char) {
    match c {
        '\r' => out.push_str("\\r"),
        c if is_invisible_or_bidi(c) => out.push_str(&format!("<U+{:04X}>", c as u32)),
        c if c.is_control() && c != '\n' && c != '\t' => {
            let n = c as u32;
            if n <= 0xff {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        }
        c => out.push(c),
    }
}

/// A JSON document made terminal-safe without changing what it means: inside JSON, bidi controls and
/// invisible characters may only appear in strings, where `\uXXXX` is the same character. (Control
/// characters are already escaped by any JSON serialiser.)
pub fn json_terminal_safe(json: &str) -> Cow<'_, str> {
    if !json
        .chars()
        .any(|c| is_invisible_or_bidi(c) || is_unsafe(c))
    {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_invisible_or_bidi(c) || is_unsafe(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_become_visible() {
        assert_eq!(sanitize("ok"), "ok");
        assert!(matches!(
            sanitize("plain text\nline 2\tx"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            sanitize("Ledger\x1b[2J\x1b[HALLOWED"),
            "Ledger\\x1b[2J\\x1b[HALLOWED"
        );
        assert_eq!(sanitize("a\r\x1b[3A\x1b[Jb"), "a\\r\\x1b[3A\\x1b[Jb");
        assert_eq!(sanitize("\x1b[8mhidden"), "\\x1b[8mhidden");
        assert_eq!(sanitize("del\x7f c1\u{9b}2J"), "del\\x7f c1\\x9b2J");
        assert_eq!(sanitize("pause\u{202E}lufituaeb"), "pause<U+202E>lufituaeb");
        assert_eq!(sanitize("a\u{200B}b\u{FEFF}"), "a<U+200B>b<U+FEFF>");
        assert_eq!(sanitize_line("a\nb"), "a\\nb");
    }

    #[test]
    fn json_stays_json() {
        let v = serde_json::json!({"device": "x\u{202E}y\x1b[2J"});
        let s = serde_json::to_string(&v).unwrap_or_default();
        let safe = json_terminal_safe(&s);
        assert!(!safe.contains('\u{202E}') && !safe.contains('\x1b'));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back, v);
    }
}

//! Telling canonical (RFC 8785) JSON at a glance.
//!
//! The JCS crate canonicalizes by buffering and re-sorting every object
//! member: about 70 µs for a 3 KB decision body here, the largest cost of
//! appending and verifying a record. Most record text is in a simple
//! subset of JSON whose canonical form can be recognised in one pass with
//! no allocation: objects whose keys are printable ASCII without escapes,
//! integers of at most 2^53 - 1, strings, `true`, `false` and `null`. For
//! such text, canonical means: no whitespace, keys in strictly increasing
//! byte order (for ASCII that is RFC 8785's UTF-16 order, and strictness
//! rules out duplicates), integers without sign on zero, leading zeros,
//! fraction or exponent (a double prints an integer below 2^53 as its plain
//! digits), and strings escaped exactly as RFC 8785 (and serde_json, which
//! the JCS crate writes strings with) escape them: `\"`, `\\`, the five
//! short escapes `\b \f \n \r \t`, `\u00xx` in lower-case hex for the other
//! control characters, everything else as itself.
//!
//! [`members`] answers "certainly canonical" or "cannot tell": text outside
//! the subset, or not canonical, gets `None`, and the caller falls back to
//! the JCS crate, which stays the definition. So a `Some` must never be
//! wrong, and a `None` only costs time.

use std::ops::Range;

/// Nesting deeper than this is left to the JCS crate (serde_json itself
/// stops at 128 levels).
const MAX_DEPTH: usize = 64;

/// The largest integer magnitude recognised: 2^53 - 1, as
/// [`crate::record::MAX_SAFE_INTEGER`].
const MAX_INTEGER: u64 = crate::record::MAX_SAFE_INTEGER;

/// Top-level members of a canonical object: their keys and the byte range
/// of each `"key":value`.
pub(crate) type Members<'a> = Vec<(&'a [u8], Range<usize>)>;

/// If `text` is certainly a JSON object in canonical form: its top-level
/// members, in order. `None`: not canonical, or not in the recognised subset.
pub(crate) fn members(text: &[u8]) -> Option<Members<'_>> {
    std::str::from_utf8(text).ok()?;
    let mut scan = Scan { text, at: 0 };
    let mut top = Vec::new();
    scan.object(1, Some(&mut top))?;
    (scan.at == text.len()).then_some(top)
}

/// How many bytes at the start of `text` a string holds as themselves: up
/// to the first `"`, `\`, control character or the end. Eight bytes at a
/// time, by the classic "has a byte less than n" test: in `v - n * 0x01..01`
/// a byte whose top bit is set where `v`'s was clear was below `n`; the
/// lowest such byte is exact (borrows only run upwards), and bytes of 0x80
/// and above (UTF-8 beyond ASCII) never match. `"` and `\` are the bytes
/// below 1 after an XOR with them.
fn plain_run(text: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let below = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v & TOPS;
    let mut at = 0;
    for chunk in text.chunks_exact(8) {
        let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let hits = below(v ^ (ONES * u64::from(b'"')), 1) | below(v ^ (ONES * u64::from(b'\\')), 1) | below(v, 0x20);
        if hits != 0 {
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + text[at..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(text.len() - at)
}

/// Whether `a < b` in byte order; keys are short, and a loop beats a call
/// to `memcmp` here.
fn ascending(a: &[u8], b: &[u8]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x < y;
        }
    }
    a.len() < b.len()
}

/// A cursor over text already known to be UTF-8. Every method returns
/// `None` as soon as the text leaves the recognised canonical subset.
struct Scan<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1, None),
            b'[' => self.array(depth + 1),
            b'"' => self.string(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    /// An object; its members' keys and ranges go to `top` if given.
    fn object(&mut self, depth: usize, mut top: Option<&mut Members<'a>>) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        let mut previous: Option<&[u8]> = None;
        loop {
            let start = self.at;
            let key = self.key()?;
            if previous.is_some_and(|p| !ascending(p, key)) {
                return None;
            }
            previous = Some(key);
            self.eat(b':')?;
            self.value(depth)?;
            if let Some(top) = top.as_deref_mut() {
                top.push((key, start..self.at));
            }
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            self.value(depth)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A key of printable ASCII with no escapes; returns its bytes.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.text[self.at..];
        let len = rest.iter().position(|&b| !(b' '..=b'~').contains(&b) || b == b'"' || b == b'\\')?;
        if rest[len] != b'"' {
            return None;
        }
        self.at += len + 1;
        Some(&rest[..len])
    }

    fn string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            // A run of characters written as themselves, then what ends it.
            self.at += plain_run(&self.text[self.at..]);
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    self.at += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                        b'u' => self.control_escape()?,
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
    }

    /// After `\`: `u00xx` in lower-case hex, for a control character that
    /// has no short escape.
    fn control_escape(&mut self) -> Option<()> {
        let digits = self.text.get(self.at + 1..self.at + 5)?;
        let hex = |d: u8| match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            _ => None,
        };
        if digits[..2] != *b"00" {
            return None;
        }
        let code = hex(digits[2])? << 4 | hex(digits[3])?;
        if code >= 0x20 || matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
            return None;
        }
        self.at += 5;
        Some(())
    }

    fn integer(&mut self) -> Option<()> {
        let negative = self.eat(b'-').is_some();
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let digits = &self.text[start..self.at];
        // 16 digits hold every integer up to 2^53 - 1 (9007199254740991).
        if digits.is_empty() || digits.len() > 16 || (digits[0] == b'0' && (digits.len() > 1 || negative)) {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let value = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        (value <= MAX_INTEGER).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.text.get(self.at..self.at + word.len()).filter(|w| *w == word)?;
        self.at += word.len();
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::canonical_json;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// Whether `text` is certainly a JSON value (any, not only an object)
    /// in canonical form.
    fn is_canonical(text: &[u8]) -> bool {
        if std::str::from_utf8(text).is_err() {
            return false;
        }
        let mut scan = Scan { text, at: 0 };
        scan.value(0).is_some() && scan.at == text.len()
    }

    /// What the JCS crate says: `text` parses and canonicalizes to itself.
    fn crate_says_canonical(text: &[u8]) -> bool {
        serde_json::from_slice::<Value>(text).is_ok_and(|v| canonical_json(&v).is_ok_and(|c| c == text))
    }

    #[test]
    fn recognises_canonical_text() {
        for text in [
            r#"{}"#,
            r#"{"":0,"a":[],"b":{},"c":[1,-2,true,false,null,"x"]}"#,
            concat!(r#"{"a":"\"\\\b\f\n\r\t\u0000\u001f\u000b","b":"/ é 𝄞 "#, "\u{7f}", r#""}"#),
            r#"{"m":-9007199254740991,"n":9007199254740991,"z":0}"#,
            r#"{"A":1,"B":2,"a":3,"a b":4,"a~":5}"#,
        ] {
            assert!(members(text.as_bytes()).is_some(), "{text}");
            assert!(crate_says_canonical(text.as_bytes()), "the crate disagrees on {text}");
        }
    }

    #[test]
    fn refuses_what_is_not_canonical_or_not_in_the_subset() {
        for text in [
            r#"{"b":1,"a":2}"#,                       // order
            r#"{"a":1,"a":1}"#,                       // duplicate
            r#"{ "a":1}"#,                            // whitespace
            r#"{"a":1} "#,                            // trailing
            r#"{"a":1.5}"#,                           // fraction
            r#"{"a":1e2}"#,                           // exponent
            r#"{"a":-0}"#,                            // negative zero
            r#"{"a":01}"#,                            // leading zero
            r#"{"a":9007199254740992}"#,              // beyond 2^53 - 1
            r#"{"a":"\/"}"#,                          // needless escape
            r#"{"a":"\u0041"}"#,                      // escaped printable
            r#"{"a":"\u000a"}"#,                      // long form of \n
            r#"{"a":"\u001F"}"#,                      // upper-case hex
            "{\"a\":\"\x01\"}",                       // raw control character
            r#"{"é":1}"#,                             // non-ASCII key (left to the crate)
            r#"{"a\n":1}"#,                           // escaped key (left to the crate)
            r#"[1]"#,                                 // not an object
            r#"{"a":tru}"#,                           // broken literal
            r#"{"a":[1,]}"#,                          // trailing comma
        ] {
            assert!(members(text.as_bytes()).is_none(), "{text}");
        }
        assert!(members(b"{\"a\":\"\xff\"}").is_none(), "invalid UTF-8");
        let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
        assert!(!is_canonical(deep.as_bytes()));
    }

    #[test]
    fn members_are_the_top_level_ones() {
        let text = br#"{"a":{"x":1},"b":[2,3],"c":"d"}"#;
        let found = members(text).unwrap();
        let spans: Vec<(&[u8], &[u8])> = found.iter().map(|(k, r)| (*k, &text[r.clone()])).collect();
        assert_eq!(
            spans,
            [(&b"a"[..], &br#""a":{"x":1}"#[..]), (b"b", br#""b":[2,3]"#), (b"c", br#""c":"d""#)]
        );
    }

    proptest! {
        #[test]
        fn plain_runs_end_where_a_byte_by_byte_scan_ends(text in proptest::collection::vec(
            prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..0x80, 0x80u8..=0xff], 0..40)) {
            let naive = text.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(text.len());
            prop_assert_eq!(plain_run(&text), naive);
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![4 => "[a-z]{0,3}", 1 => any::<String>()];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
            "[\\x00-\\x7f]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Never "canonical" when the crate says otherwise, on serde_json's
        /// output, the crate's own output, and either with a byte changed.
        #[test]
        fn agrees_with_the_jcs_crate(value in arb_json(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let plain = serde_json::to_vec(&value).unwrap();
            let canonical = canonical_json(&value).unwrap();
            for text in [plain.clone(), canonical.clone()] {
                let mut changed = text.clone();
                changed[at.index(text.len())] = byte;
                for t in [text, changed] {
                    if is_canonical(&t) {
                        prop_assert!(crate_says_canonical(&t), "{}", String::from_utf8_lossy(&t));
                    }
                }
            }
            // And it does recognise the common case.
            if value.is_object() && !has_float_or_odd_key(&value) {
                prop_assert!(members(&canonical).is_some(), "{}", String::from_utf8_lossy(&canonical));
            }
        }
    }

    /// Outside the recognised subset: a float, a big integer or a key that
    /// is not printable ASCII.
    fn has_float_or_odd_key(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.is_f64() || n.as_i64().is_none_or(|i| i.unsigned_abs() > MAX_INTEGER),
            Value::Array(a) => a.iter().any(has_float_or_odd_key),
            Value::Object(m) => m.iter().any(|(k, v)| {
                !k.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') || has_float_or_odd_key(v)
            }),
            _ => false,
        }
    }
}

//! Decimals as text, fast. The decisions' check details, trigger lines and
//! rationales print dozens of decimals per account; `rust_decimal`'s own
//! `Display` finds the digits one division by ten of a 96-bit number at a
//! time. [`Num`] prints exactly the same text (the same digits, the same
//! truncation to a precision, the same sign and padding flags) from one
//! 128-bit division at most and 64-bit arithmetic after it, and [`text`]
//! strings words and such decimals together without a formatter.

use std::fmt;

use rust_decimal::Decimal;

/// The most fraction digits `rust_decimal` prints itself; beyond, it pads.
const MAX_SCALE: usize = 28;

/// A decimal that prints like `Decimal`'s `Display`, faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Num(pub Decimal);

/// Decimal digits of `n` (at least one), most significant first, written at
/// the end of `out`; returns where they start.
fn digits_u64(mut n: u64, out: &mut [u8], mut end: usize) -> usize {
    loop {
        end -= 1;
        out[end] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return end;
        }
    }
}

/// Appends the text of `d` without its sign, as `rust_decimal` writes it
/// to `precision` places (its own scale without one), to `out`; returns
/// how many zeros follow past rust_decimal's 28 places.
fn unsigned_text(d: Decimal, precision: Option<usize>, out: &mut Vec<u8>) -> usize {
    const TEN_19: u128 = 10_000_000_000_000_000_000;
    // The mantissa has at most 29 digits; a scale at most 28.
    let mut scale = d.scale() as usize;
    let mut m = d.mantissa().unsigned_abs();
    // Digits past the precision are cut, not rounded: drop them first
    // (weights carry 28 digits; their text shows 2).
    if let Some(p) = precision.filter(|p| *p < scale) {
        m /= 10u128.pow((scale - p) as u32);
        scale = p;
    }
    let mut buf = [0u8; 40];
    let end = buf.len();
    let start = if m == 0 {
        end
    } else if m <= u128::from(u64::MAX) {
        digits_u64(m as u64, &mut buf, end)
    } else {
        // Low 19 digits, zero-padded, then the rest (below 10^10).
        let (high, low) = ((m / TEN_19) as u64, (m % TEN_19) as u64);
        let low_start = digits_u64(low, &mut buf, end);
        let mut at = low_start;
        while end - at < 19 {
            at -= 1;
            buf[at] = b'0';
        }
        digits_u64(high, &mut buf, at)
    };
    let digits = &buf[start..];
    // As `rust_decimal`: at least `scale` digits (leading zeros), the
    // whole part, then the fraction cut (not rounded) or padded to the
    // precision; "0" before a point with no whole part, and for nothing.
    let wanted = precision.unwrap_or(scale);
    let fraction = wanted.min(MAX_SCALE);
    if digits.len() > scale {
        // A whole part: the digits before the point.
        let whole = digits.len() - scale;
        out.extend_from_slice(&digits[..whole]);
        if fraction > 0 {
            out.push(b'.');
            out.extend_from_slice(&digits[whole..]);
        }
    } else {
        out.push(b'0');
        if fraction > 0 {
            out.push(b'.');
            out.resize(out.len() + scale - digits.len(), b'0');
            out.extend_from_slice(digits);
        }
    }
    // The fraction shows `scale` digits so far; the precision may want more.
    if fraction > scale {
        out.resize(out.len() + fraction - scale, b'0');
    }
    wanted - fraction
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::with_capacity(48);
        let zeros = unsigned_text(self.0, f.precision(), &mut text);
        text.resize(text.len() + zeros, b'0');
        let text = std::str::from_utf8(&text).map_err(|_| fmt::Error)?;
        f.pad_integral(!self.0.is_sign_negative(), "", text)
    }
}

/// A piece of a line of text made by [`text`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Piece<'s> {
    /// Words, as they are.
    S(&'s str),
    /// A decimal as `{}` prints it.
    D(Decimal),
    /// A decimal as `{:.N}` prints it.
    Fixed(Decimal, usize),
    /// A decimal as `{:+.N}` prints it.
    Signed(Decimal, usize),
    /// An integer as `{}` prints it.
    Int(i64),
    /// An unsigned integer (an account number) as `{}` prints it.
    Uint(u64),
    /// A date as `{}` prints it (`2026-12-01`).
    Day(time::Date),
}

/// The pieces one after another: what `format!` would make of them, without
/// going through a formatter (the lines every decision writes).
pub(crate) fn text(pieces: &[Piece<'_>]) -> String {
    let room: usize = pieces.iter().map(|p| if let Piece::S(words) = p { words.len() } else { 16 }).sum();
    let mut out = Vec::with_capacity(room);
    push(&mut out, pieces);
    line(out)
}

/// Bytes written by [`push`] as a `String`: words are UTF-8 and numbers
/// ASCII, so this checks the whole line once and copies nothing.
pub(crate) fn line(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The pieces one after another, appended to `out` as bytes (for text
/// that goes on into other bytes, as the input digest's).
pub(crate) fn push(out: &mut Vec<u8>, pieces: &[Piece<'_>]) {
    for piece in pieces {
        match *piece {
            Piece::S(words) => out.extend_from_slice(words.as_bytes()),
            Piece::D(d) => push_num(out, d, None, false),
            Piece::Fixed(d, places) => push_num(out, d, Some(places), false),
            Piece::Signed(d, places) => push_num(out, d, Some(places), true),
            Piece::Int(n) => push_int(out, n),
            Piece::Uint(n) => push_uint(out, n),
            Piece::Day(day) => push_day(out, day),
        }
    }
}

/// Appends `d` to `out` as `format!("{}", d)` would (`places`: as `{:.N}`;
/// `plus`: as `{:+}`), without going through a formatter.
fn push_num(out: &mut Vec<u8>, d: Decimal, places: Option<usize>, plus: bool) {
    if d.is_sign_negative() {
        out.push(b'-');
    } else if plus {
        out.push(b'+');
    }
    let zeros = unsigned_text(d, places, out);
    out.resize(out.len() + zeros, b'0');
}

/// Appends `n` as `{}` prints it.
fn push_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_uint(out, n.unsigned_abs());
}

/// Appends `n` as `{}` prints it.
fn push_uint(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let start = digits_u64(n, &mut buf, 20);
    out.extend_from_slice(&buf[start..]);
}

/// Appends `day` as `{}` prints it: four digits of year, two of month and
/// of day; a year outside 0 to 9999 as the date's `Display` writes it.
fn push_day(out: &mut Vec<u8>, day: time::Date) {
    let year = day.year();
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(day.to_string().as_bytes());
        return;
    }
    let (year, month, d) = (year as u32, u8::from(day.month()), day.day());
    let digit = |n: u32| b'0' + (n % 10) as u8;
    out.extend_from_slice(&[
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(u32::from(month) / 10),
        digit(u32::from(month)),
        b'-',
        digit(u32::from(d) / 10),
        digit(u32::from(d)),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ANY: &[usize] = &[0, 1, 2, 4];

    fn same(d: Decimal, precisions: &[usize]) {
        assert_eq!(Num(d).to_string(), d.to_string(), "{d:?}");
        // rust_decimal panics when the whole digits, the point and the
        // precision pass its 32-character buffer.
        let whole = d.trunc().abs().to_string().len();
        for &p in precisions.iter().filter(|&&p| whole + 1 + p <= 32) {
            assert_eq!(format!("{:.*}", p, Num(d)), format!("{:.*}", p, d), "{d:?} to {p} places");
            assert_eq!(format!("{:+.*}", p, Num(d)), format!("{:+.*}", p, d), "{d:?} to {p} places with a sign");
        }
        assert_eq!(format!("{:>12}", Num(d)), format!("{:>12}", d));
        let pushed = |places, plus| {
            let mut out = b"x".to_vec();
            push_num(&mut out, d, places, plus);
            String::from_utf8(out).expect("ASCII")
        };
        assert_eq!(pushed(None, false), format!("x{d}"));
        assert_eq!(text(&[Piece::S("x "), Piece::D(d), Piece::S(" y "), Piece::Fixed(d, 2), Piece::Signed(d, 2)]), format!("x {d} y {d:.2}{d:+.2}"));
        for &p in precisions.iter().filter(|&&p| whole + 1 + p <= 32) {
            assert_eq!(pushed(Some(p), false), format!("x{:.*}", p, d), "{d:?} to {p} places");
            assert_eq!(pushed(Some(p), true), format!("x{:+.*}", p, d), "{d:?} to {p} places with a sign");
        }
    }

    #[test]
    fn prints_as_rust_decimal_does_at_the_edges() {
        for d in [
            Decimal::ZERO,
            Decimal::new(0, 5),
            -Decimal::new(0, 5),
            Decimal::ONE,
            Decimal::NEGATIVE_ONE,
            Decimal::new(5, 3),
            Decimal::new(-5, 28),
            Decimal::new(12345, 2),
            Decimal::new(-37_682_000, 6),
            Decimal::MAX,
            Decimal::MIN,
            Decimal::from_i128_with_scale(10_000_000_000_000_000_000, 0),
            Decimal::from_i128_with_scale(9_999_999_999_999_999_999, 19),
            Decimal::from_i128_with_scale(18_446_744_073_709_551_616, 28),
            Decimal::from_i128_with_scale(-79_228_162_514_264_337_593_543_950_335, 28),
        ] {
            same(d, ANY);
        }
        // Past rust_decimal's 28 places it pads with zeros.
        same(Decimal::new(-5, 28), &[27, 28, 29, 30]);
    }

    #[test]
    fn integers_and_days_print_as_display_does() {
        for n in [0, 7, -7, 30, 1_000_000, i64::MAX, i64::MIN] {
            assert_eq!(text(&[Piece::S("n="), Piece::Int(n)]), format!("n={n}"));
        }
        for n in [0, 7, 1_000_000, u64::MAX] {
            assert_eq!(text(&[Piece::S("n="), Piece::Uint(n)]), format!("n={n}"));
        }
        let days = [
            time::macros::date!(2026 - 12 - 01),
            time::macros::date!(0001 - 01 - 09),
            time::macros::date!(0000 - 01 - 01),
            time::macros::date!(9999 - 12 - 31),
            time::macros::date!(-0001 - 12 - 31),
        ];
        for day in days {
            assert_eq!(text(&[Piece::Day(day), Piece::S(".")]), format!("{day}."));
        }
    }

    proptest! {
        #[test]
        fn days_print_as_display_does(julian in 1_721_060i32..5_373_484) {
            // Julian days of 0000-01-01 to 9999-12-31.
            let day = time::Date::from_julian_day(julian).expect("a date");
            prop_assert_eq!(text(&[Piece::Day(day)]), day.to_string());
        }

        #[test]
        fn prints_as_rust_decimal_does(mantissa in -(1i128 << 96) + 1..(1i128 << 96), scale in 0u32..=28) {
            same(Decimal::from_i128_with_scale(mantissa, scale), ANY);
        }

        #[test]
        fn prints_small_numbers_as_rust_decimal_does(mantissa in -1_000_000_000i128..1_000_000_000, scale in 0u32..=28) {
            same(Decimal::from_i128_with_scale(mantissa, scale), &[0, 1, 2, 3, 4, 8, 19]);
        }
    }
}

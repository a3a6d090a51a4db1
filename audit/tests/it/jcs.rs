//! RFC 8785 (JCS) conformance of the canonical bytes records are hashed
//! over, against the RFC's own examples. The expected strings were checked
//! against `JSON.stringify` and JavaScript's UTF-16 string sort in Node.

use ballast_audit::record::canonical_json;
use serde_json::{Value, json};

fn jcs(value: &Value) -> String {
    String::from_utf8(canonical_json(value).unwrap()).unwrap()
}

/// RFC 8785 section 3.2.2: literals, numbers and string escapes.
#[test]
fn rfc8785_primitive_example() {
    let input = r#"{
        "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
        "literals": [null, true, false]
    }"#;
    let value: Value = serde_json::from_str(input).unwrap();
    assert_eq!(
        jcs(&value),
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
}

/// RFC 8785 section 3.2.3: properties sort by UTF-16 code units, so the
/// emoji (a surrogate pair starting 0xD83D) comes before U+FB33, though its
/// code point (U+1F600) is larger.
#[test]
fn rfc8785_sorting_by_utf16_code_units() {
    let input = r#"{
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\ud83d\ude00": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let value: Value = serde_json::from_str(input).unwrap();
    let expected = concat!(
        "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",",
        "\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",",
        "\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}",
    );
    assert_eq!(jcs(&value), expected);
}

/// RFC 8785 appendix B: IEEE 754 doubles (as bits) and their ECMAScript
/// spelling, including the switch to exponent form at 1e21.
#[test]
fn rfc8785_number_serialization() {
    let cases: &[(u64, &str)] = &[
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for &(bits, expected) in cases {
        let x = f64::from_bits(bits);
        assert_eq!(jcs(&json!(x)), expected, "{bits:016x}");
    }
    for (x, expected) in [(1e21, "1e+21"), (1e20, "100000000000000000000"), (0.1, "0.1"), (1e-7, "1e-7")] {
        assert_eq!(jcs(&json!(x)), expected);
    }
    assert_eq!(jcs(&json!(0.1 + 0.2)), "0.30000000000000004");
    // Integers are doubles too: exact up to 2^53.
    assert_eq!(jcs(&json!(9_007_199_254_740_991u64)), "9007199254740991");
    assert_eq!(jcs(&json!(-17i64)), "-17");
}

/// Only the control characters are escaped (short forms where JSON has
/// them, else lowercase `\u00xx`); `/`, DEL and U+2028 go through as they are.
#[test]
fn string_escapes() {
    let value = json!("\u{1}\u{1f}\u{7f}\t\u{8}\u{c}\n\r/\u{2028}\"\\é");
    assert_eq!(jcs(&value), "\"\\u0001\\u001f\u{7f}\\t\\b\\f\\n\\r/\u{2028}\\\"\\\\é\"");
}

/// Nested objects sort at every level; no whitespace anywhere.
#[test]
fn nested_objects_sort_at_every_level() {
    let value = json!({"b": {"z": 1, "a": [ {"y": true, "x": null} ]}, "a": "A"});
    assert_eq!(jcs(&value), r#"{"a":"A","b":{"a":[{"x":null,"y":true}],"z":1}}"#);
}

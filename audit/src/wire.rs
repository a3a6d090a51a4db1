//! Hex spellings of bytes on the wire, for `#[serde(with = ...)]`.
//!
//! Lowercase only, so a value has one spelling. Audit hashes, keys and
//! signatures are bare hex (like `sha256sum` and RFC 6962 test vectors); EVM
//! values (transaction hashes, batch ids, raw transactions) carry `0x`, as
//! every EVM tool writes them.

fn encode(bytes: &[u8], prefixed: bool) -> String {
    let start = if prefixed { 2 } else { 0 };
    let mut text = vec![b'0'; start + bytes.len() * 2];
    if prefixed {
        text[1] = b'x';
    }
    hex::encode_to_slice(bytes, &mut text[start..]).expect("two digits a byte");
    String::from_utf8(text).expect("hex digits are ASCII")
}

/// Decodes lowercase hex, with or without the `0x` the format calls for.
pub(crate) fn decode(s: &str, prefixed: bool) -> Result<Vec<u8>, String> {
    let digits =
        if prefixed { s.strip_prefix("0x").ok_or_else(|| format!("{s:?} does not start with 0x"))? } else { s };
    if let Some(c) = digits.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(format!("{c:?} is not a lowercase hex digit"));
    }
    hex::decode(digits).map_err(|e| e.to_string())
}

fn decode_array<const N: usize>(s: &str, prefixed: bool) -> Result<[u8; N], String> {
    let bytes = decode(s, prefixed)?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| format!("expected {N} bytes of hex, found {len}"))
}

macro_rules! hex_module {
    ($name:ident, $ty:ty, $prefixed:expr, $doc:literal) => {
        #[doc = $doc]
        pub(crate) mod $name {
            use super::{convert, encode};
            use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

            pub(crate) fn serialize<S: Serializer>(v: &$ty, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&encode(v.as_ref(), $prefixed))
            }

            pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                convert(&s, $prefixed).map_err(D::Error::custom)
            }
        }
    };
}

trait FromHex: Sized {
    fn from_hex(s: &str, prefixed: bool) -> Result<Self, String>;
}
impl<const N: usize> FromHex for [u8; N] {
    fn from_hex(s: &str, prefixed: bool) -> Result<Self, String> {
        decode_array(s, prefixed)
    }
}
impl FromHex for Vec<u8> {
    fn from_hex(s: &str, prefixed: bool) -> Result<Self, String> {
        decode(s, prefixed)
    }
}
fn convert<T: FromHex>(s: &str, prefixed: bool) -> Result<T, String> {
    T::from_hex(s, prefixed)
}

hex_module!(hex32, [u8; 32], false, "32 bytes as 64 bare hex digits.");
hex_module!(hex64, [u8; 64], false, "64 bytes as 128 bare hex digits (signatures).");
hex_module!(evm32, [u8; 32], true, "32 bytes as `0x` and 64 hex digits (EVM hashes).");
hex_module!(evm_bytes, Vec<u8>, true, "Any bytes as `0x` and hex (raw EVM transactions).");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_uppercase_missing_prefix_and_wrong_length() {
        assert_eq!(decode("00ff", false).unwrap(), vec![0, 255]);
        assert_eq!(decode("0x00ff", true).unwrap(), vec![0, 255]);
        assert!(decode("00FF", false).is_err());
        assert!(decode("00ff", true).is_err());
        assert!(decode("0x0", true).is_err(), "odd length");
        assert!(decode_array::<32>(&"ab".repeat(31), false).is_err());
        assert_eq!(decode_array::<2>("0xabcd", true).unwrap(), [0xab, 0xcd]);
    }
}

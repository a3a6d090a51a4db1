//! UTC instants written as canonical RFC 3339 strings.
//!
//! One instant has exactly one spelling: `YYYY-MM-DDTHH:MM:SS[.fff…]Z`, the
//! fraction with its trailing zeros dropped (none at all on whole seconds),
//! always `Z`. Parsing accepts only that spelling, so the bytes a record is
//! hashed over cannot vary for the same instant.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339};

use crate::error::{Error, Result};

/// A UTC instant between years 0000 and 9999, nanosecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// The instant `t`, moved to UTC. Fails outside years 0000–9999, which
    /// RFC 3339 cannot write.
    pub fn new(t: OffsetDateTime) -> Result<Self> {
        let t = t.to_offset(UtcOffset::UTC);
        if !(0..=9999).contains(&t.year()) {
            return Err(Error::Timestamp { value: t.to_string(), reason: "year outside 0000-9999".into() });
        }
        Ok(Self(t))
    }

    /// Nanoseconds since the Unix epoch.
    pub fn from_unix_nanos(nanos: i128) -> Result<Self> {
        let t = OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .map_err(|e| Error::Timestamp { value: nanos.to_string(), reason: e.to_string() })?;
        Self::new(t)
    }

    /// The current time from the system clock.
    pub fn now() -> Self {
        Self::new(OffsetDateTime::now_utc()).expect("the system clock reads a year between 0 and 9999")
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> i128 {
        self.0.unix_timestamp_nanos()
    }

    pub fn as_offset_date_time(&self) -> OffsetDateTime {
        self.0
    }

    /// Parses the canonical spelling, and only it.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Timestamp { value: s.to_owned(), reason: reason.to_owned() };
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| bad(&e.to_string()))?;
        if t.offset() != UtcOffset::UTC {
            return Err(bad("not UTC"));
        }
        let t = Self::new(t)?;
        if t.to_string() != s {
            return Err(bad("not canonical (write `Z`, uppercase `T`, no trailing zeros in the fraction)"));
        }
        Ok(t)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `new` keeps the year in range and the offset at UTC, so RFC 3339
        // formatting cannot fail.
        let s = self.0.format(&Rfc3339).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<OffsetDateTime> for Timestamp {
    type Error = Error;
    fn try_from(t: OffsetDateTime) -> Result<Self> {
        Self::new(t)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    #[test]
    fn writes_z_and_drops_trailing_fraction_zeros() {
        let t = Timestamp::new(datetime!(2025-01-02 03:04:05.678 +02:00)).unwrap();
        assert_eq!(t.to_string(), "2025-01-02T01:04:05.678Z");
        let whole = Timestamp::new(datetime!(2025-01-02 03:04:05 UTC)).unwrap();
        assert_eq!(whole.to_string(), "2025-01-02T03:04:05Z");
        assert_eq!(serde_json::to_string(&whole).unwrap(), "\"2025-01-02T03:04:05Z\"");
    }

    #[test]
    fn parses_only_the_canonical_spelling() {
        assert!(Timestamp::parse("2025-01-02T03:04:05.5Z").is_ok());
        for bad in [
            "2025-01-02T03:04:05.50Z",
            "2025-01-02T03:04:05+00:00",
            "2025-01-02T05:04:05+02:00",
            "2025-01-02t03:04:05Z",
            "2025-01-02 03:04:05Z",
            "2025-01-02T03:04:05.000Z",
            "2025-13-02T03:04:05Z",
            "",
        ] {
            let err = Timestamp::parse(bad).unwrap_err();
            assert!(matches!(err, Error::Timestamp { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn refuses_years_rfc3339_cannot_write() {
        assert!(Timestamp::new(datetime!(-0001-12-31 23:59 UTC)).is_err());
        assert!(Timestamp::new(datetime!(0000-01-01 00:00 UTC)).is_ok());
    }

    proptest! {
        #[test]
        fn serde_round_trip(nanos in 0i128..253_402_300_799_999_999_999i128) {
            let t = Timestamp::from_unix_nanos(nanos).unwrap();
            let json = serde_json::to_string(&t).unwrap();
            let back: Timestamp = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, t);
            prop_assert_eq!(back.unix_nanos(), nanos);
        }
    }
}

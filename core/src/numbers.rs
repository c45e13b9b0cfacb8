//! Numbers as settings receive them (a Python `float` or huge `int`, a JavaScript `number`, a
//! C integer), kept as given until [`ConfigBuilder::build`](crate::ConfigBuilder::build) turns
//! them into the types settings need or refuses them with a config error naming the field: no
//! value a user passes may panic (`Duration::from_secs_f64` does on NaN, infinities and
//! overflow), and no binding checks a value itself.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::fields::ConfigField;

/// A duration as a setting received it: exact from Rust, or a number of seconds (Python) or
/// milliseconds (JavaScript, C) that may be anything a user typed. Turned into a `Duration` by
/// [`ConfigBuilder::build`](crate::ConfigBuilder::build), which refuses, naming the field,
/// what is not finite, negative or beyond [`MAX_SETTING_SECONDS`] (`Duration::from_secs_f64`
/// would panic on it), and then checks the setting's own range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Span {
    /// An exact duration.
    Exact(Duration),
    /// A number of seconds.
    Seconds(f64),
    /// A number of milliseconds.
    Millis(f64),
}

impl Span {
    /// A number of seconds, checked when the config is built.
    pub fn seconds(value: f64) -> Self {
        Self::Seconds(value)
    }

    /// A number of milliseconds, checked when the config is built.
    pub fn millis(value: f64) -> Self {
        Self::Millis(value)
    }

    /// A finite negative number: the "off" value of settings that have one (the DNS
    /// propagation timeout).
    pub(crate) fn is_negative(self) -> bool {
        match self {
            Self::Exact(_) => false,
            Self::Seconds(v) | Self::Millis(v) => v.is_finite() && v < 0.0,
        }
    }

    /// The duration, or a config error naming `field`.
    pub(crate) fn duration(self, field: ConfigField) -> Result<Duration> {
        let (value, unit, per_second) = match self {
            Self::Exact(d) => return Ok(d),
            Self::Seconds(v) => (v, "seconds", 1.0),
            Self::Millis(v) => (v, "milliseconds", 1000.0),
        };
        if !value.is_finite() || value < 0.0 || value / per_second > MAX_SETTING_SECONDS {
            return Err(Error::config(
                field,
                format!(
                    "{value} is not a number of {unit} between 0 and {}",
                    MAX_SETTING_SECONDS * per_second
                ),
            ));
        }
        Ok(Duration::from_secs_f64(value / per_second))
    }
}

impl From<Duration> for Span {
    fn from(d: Duration) -> Self {
        Self::Exact(d)
    }
}

/// A whole number as a setting received it: exact from Rust or C, or a float (a JavaScript
/// `number`, a Python `int` too large for one) that [`ConfigBuilder::build`](crate::ConfigBuilder::build)
/// refuses, naming the field, unless it is whole and in the setting's range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An exact whole number.
    Whole(u64),
    /// A number that may be anything (NaN, negative, fractional, huge).
    Float(f64),
}

impl Number {
    /// The whole number in `min..=max`, or a config error naming `field`.
    pub(crate) fn whole(self, field: ConfigField, min: u64, max: u64) -> Result<u64> {
        let ok = match self {
            Self::Whole(n) => (min..=max).contains(&n).then_some(n),
            Self::Float(v) => {
                (v.is_finite() && v.fract() == 0.0 && v >= min as f64 && v <= max as f64)
                    .then_some(v as u64)
            }
        };
        ok.ok_or_else(|| {
            let shown = match self {
                Self::Whole(n) => n.to_string(),
                Self::Float(v) => v.to_string(),
            };
            Error::config(
                field,
                format!("{shown} is not a whole number from {min} to {max}"),
            )
        })
    }

    /// A TCP port (1–65535), or a config error naming `field`.
    pub(crate) fn port(self, field: ConfigField) -> Result<u16> {
        self.whole(field, 1, u64::from(u16::MAX)).map(|p| p as u16)
    }
}

impl From<f64> for Number {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

macro_rules! whole_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Number {
            fn from(n: $t) -> Self {
                // Negative values only come from signed types; they are refused by `whole`.
                u64::try_from(n).map_or(Self::Float(n as f64), Self::Whole)
            }
        }
    )*};
}
whole_from!(u16, u32, u64, usize, i32, i64);

/// A modification time a storage callback reported as seconds since the Unix epoch (negative
/// before it); NaN, infinities and times more than 3000 years away are a storage error naming
/// `what`.
pub fn unix_time(what: &str, secs: f64) -> Result<SystemTime> {
    if !secs.is_finite() || secs.abs() > MAX_UNIX_SECONDS {
        return Err(Error::new(
            ErrorKind::Storage,
            format!("{what}: {secs} is not a time (seconds since the Unix epoch)"),
        ));
    }
    let offset = Duration::from_secs_f64(secs.abs());
    Ok(if secs >= 0.0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    })
}

/// The largest number of seconds a binding may pass for any duration (a hundred years).
pub const MAX_SETTING_SECONDS: f64 = 100.0 * 365.0 * 24.0 * 3600.0;
const MAX_UNIX_SECONDS: f64 = 3000.0 * 365.0 * 24.0 * 3600.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_would_panic_and_names_the_field() {
        let field = ConfigField::RenewCheckInterval;
        for v in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            1e300,
            2f64.powi(64),
        ] {
            for span in [Span::seconds(v), Span::millis(v * 1000.0)] {
                let e = span.duration(field).unwrap_err();
                assert_eq!(e.field(), Some("renew_check_interval"), "{v}");
            }
            assert!(
                Number::from(v).port(ConfigField::AltHttpPort).is_err(),
                "{v}"
            );
            assert_eq!(
                unix_time("stat", v).map_err(|e| e.kind()).err(),
                (v.is_nan() || v.abs() > MAX_UNIX_SECONDS).then_some(ErrorKind::Storage),
                "{v}"
            );
        }
        assert_eq!(
            Span::seconds(1.5).duration(field).unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            Span::millis(1.5).duration(field).unwrap(),
            Duration::from_micros(1500)
        );
        assert!(Span::millis(-1.0).is_negative() && !Span::millis(f64::NAN).is_negative());
        let port = ConfigField::AltHttpPort;
        assert_eq!(Number::from(443.0).port(port).unwrap(), 443);
        assert_eq!(Number::from(443u16).port(port).unwrap(), 443);
        for bad in [0.0, 65536.0, 80.5] {
            assert!(Number::from(bad).port(port).is_err(), "{bad}");
        }
        assert!(Number::from(-1).port(port).is_err());
        assert!(Number::from(u64::MAX).port(port).is_err());
        assert_eq!(Number::from(7.0).whole(port, 0, 10).unwrap(), 7);
        assert_eq!(
            unix_time("stat", -1.5).unwrap(),
            UNIX_EPOCH - Duration::from_millis(1500)
        );
    }
}

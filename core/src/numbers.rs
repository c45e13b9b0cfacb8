//! Numbers as bindings receive them (a Python `float` or huge `int`, a JavaScript `number`),
//! turned into the types settings need, or refused with a config error naming the field: no
//! value a user passes may panic (`Duration::from_secs_f64` does on NaN, infinities and
//! overflow). Each setting's own range is checked by
//! [`ConfigBuilder::build`](crate::ConfigBuilder::build).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};

/// A duration a binding received as a number of seconds (Python's `float`): refused, naming
/// `field`, unless finite, not negative and at most [`MAX_SETTING_SECONDS`]. The setting's own
/// range is checked by [`ConfigBuilder::build`](crate::ConfigBuilder::build).
pub fn seconds(field: &'static str, value: f64) -> Result<Duration> {
    if !(0.0..=MAX_SETTING_SECONDS).contains(&value) {
        return Err(Error::config(
            field,
            format!("{value} is not a number of seconds between 0 and {MAX_SETTING_SECONDS}"),
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

/// A duration a binding received as a number of milliseconds (JavaScript's `number`), checked
/// as [`seconds`] does.
pub fn milliseconds(field: &'static str, value: f64) -> Result<Duration> {
    if !value.is_finite() || value < 0.0 || value / 1000.0 > MAX_SETTING_SECONDS {
        return Err(Error::config(
            field,
            format!(
                "{value} is not a number of milliseconds between 0 and {}",
                MAX_SETTING_SECONDS * 1000.0
            ),
        ));
    }
    Ok(Duration::from_secs_f64(value / 1000.0))
}

/// A whole number a binding received as a float (a JavaScript `number`, or a Python `int`
/// that may be huge), refused outside `min..=max`, naming `field`.
pub fn whole_number(field: &'static str, value: f64, min: u64, max: u64) -> Result<u64> {
    if !value.is_finite() || value.fract() != 0.0 || value < min as f64 || value > max as f64 {
        return Err(Error::config(
            field,
            format!("{value} is not a whole number from {min} to {max}"),
        ));
    }
    Ok(value as u64)
}

/// A TCP port (1–65535) given as a number, naming `field` when refused.
pub fn port(field: &'static str, value: f64) -> Result<u16> {
    whole_number(field, value, 1, u64::from(u16::MAX)).map(|p| p as u16)
}

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
        for v in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            1e300,
            2f64.powi(64),
        ] {
            let e = seconds("renew_check_interval", v).unwrap_err();
            assert_eq!(e.field(), Some("renew_check_interval"), "{v}");
            let e = milliseconds("renewCheckInterval", v).unwrap_err();
            assert_eq!(e.field(), Some("renewCheckInterval"), "{v}");
            assert!(port("alt_http_port", v).is_err(), "{v}");
            assert_eq!(
                unix_time("stat", v).map_err(|e| e.kind()).err(),
                (v.is_nan() || v.abs() > MAX_UNIX_SECONDS).then_some(ErrorKind::Storage),
                "{v}"
            );
        }
        assert_eq!(seconds("x", 1.5).unwrap(), Duration::from_millis(1500));
        assert_eq!(milliseconds("x", 1.5).unwrap(), Duration::from_micros(1500));
        assert_eq!(port("p", 443.0).unwrap(), 443);
        for bad in [0.0, 65536.0, 80.5] {
            assert!(port("p", bad).is_err(), "{bad}");
        }
        assert_eq!(whole_number("n", 7.0, 0, 10).unwrap(), 7);
        assert_eq!(
            unix_time("stat", -1.5).unwrap(),
            UNIX_EPOCH - Duration::from_millis(1500)
        );
    }
}

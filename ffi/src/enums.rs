//! The C enums' numbers, kept by the compiler: [`c_enum!`] gives each `#[repr(u32)]` enum its
//! list of values, its conversion from a `u32` the C caller passed, and the name of each value's
//! C constant, all from one list of variants that a generated exhaustive `match` checks against
//! the enum (a variant left out does not compile). A unit test checks every name and number
//! against `include/certmagic.h`.
//!
//! The enums themselves stay plain Rust items next to the functions that take them, because
//! cbindgen reads items, not macro input.

/// Implements `ALL`, `from_u32` and `c_name` for a `#[repr(u32)]` C enum from the list of its
/// variants and their C constant names.
macro_rules! c_enum {
    ($ty:ident { $($variant:ident => $c_name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            #[allow(dead_code)]
            pub(crate) const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value a C caller passed as a number, if it is one.
            #[allow(dead_code)]
            pub(crate) fn from_u32(n: u32) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| *v as u32 == n)
            }

            /// The name of the C constant (as in `include/certmagic.h`).
            #[allow(dead_code)]
            pub(crate) fn c_name(self) -> &'static str {
                match self {
                    $(Self::$variant => $c_name,)+
                }
            }
        }
    };
}

pub(crate) use c_enum;

#[cfg(test)]
#[allow(clippy::expect_used)] // tests fail by panicking
mod tests {
    use crate::config::{certmagic_callback_kind, certmagic_challenge_type, certmagic_key_type};
    use crate::issuers::certmagic_issuer_policy;
    use crate::log::certmagic_log_level;
    use crate::result::certmagic_result;

    fn header() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/certmagic.h");
        std::fs::read_to_string(path).expect("include/certmagic.h")
    }

    fn check(header: &str, values: impl IntoIterator<Item = (&'static str, u32)>) -> usize {
        let mut n = 0;
        for (name, number) in values {
            let line = format!("{name} = {number},");
            assert!(header.contains(&line), "the header lacks `{line}`");
            n += 1;
        }
        n
    }

    #[test]
    fn names_and_numbers_match_the_header() {
        let h = header();
        let counted = check(
            &h,
            certmagic_result::ALL
                .iter()
                .map(|v| (v.c_name(), *v as u32)),
        ) + check(
            &h,
            certmagic_key_type::ALL
                .iter()
                .map(|v| (v.c_name(), *v as u32)),
        ) + check(
            &h,
            certmagic_challenge_type::ALL
                .iter()
                .map(|v| (v.c_name(), *v as u32)),
        ) + check(
            &h,
            certmagic_callback_kind::ALL
                .iter()
                .map(|v| (v.c_name(), *v as u32)),
        ) + check(
            &h,
            certmagic_log_level::ALL
                .iter()
                .map(|v| (v.c_name(), *v as u32)),
        ) + check(
            &h,
            certmagic_issuer_policy::ALL
                .iter()
                .map(|v| (v.c_name(), *v as u32)),
        );
        // Every constant of these enums in the header is one of ours.
        let in_header = h
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                [
                    "CERTMAGIC_RESULT_",
                    "CERTMAGIC_KEY_TYPE_",
                    "CERTMAGIC_CHALLENGE_TYPE_",
                    "CERTMAGIC_CALLBACK_KIND_",
                    "CERTMAGIC_LOG_LEVEL_",
                    "CERTMAGIC_ISSUER_POLICY_",
                ]
                .iter()
                .any(|p| l.starts_with(p))
                    && l.contains(" = ")
            })
            .count();
        assert_eq!(counted, in_header);
    }

    #[test]
    fn numbers_convert_both_ways() {
        for v in certmagic_result::ALL {
            assert_eq!(certmagic_result::from_u32(*v as u32), Some(*v));
        }
        assert_eq!(certmagic_key_type::from_u32(0), None);
        assert_eq!(certmagic_challenge_type::from_u32(4), None);
        assert_eq!(certmagic_log_level::from_u32(6), None);
    }
}

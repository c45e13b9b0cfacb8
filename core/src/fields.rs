//! [`ConfigField`]: every setting of [`ConfigBuilder`](crate::ConfigBuilder), by the name of
//! its setter. A refused value's error carries one, so that each binding can name it the way
//! its users wrote it (Python `renew_check_interval`, JavaScript `renewCheckInterval`, C
//! `certmagic_config_builder_set_renew_check_interval_ms`): a binding's spelling table is an
//! exhaustive `match`, so a new setting does not compile until every language has named it.

macro_rules! config_fields {
    ($($variant:ident => $name:literal,)*) => {
        /// One setting of [`ConfigBuilder`](crate::ConfigBuilder), named by its setter. Not
        /// `non_exhaustive`, on purpose: a binding's `match` must fail to compile when a
        /// setting is added, until the binding spells it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ConfigField {
            $(
                #[doc = concat!("[`ConfigBuilder::", $name, "`](crate::ConfigBuilder::", $name, ")")]
                $variant,
            )*
        }

        impl ConfigField {
            /// Every setting, in the order of the builder's documentation.
            pub const ALL: &'static [ConfigField] = &[$(Self::$variant),*];

            /// The setter's name (also the Python keyword).
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// The setting named `name` (a setter's name).
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

config_fields! {
    Ca => "ca",
    Email => "email",
    Agreed => "agreed",
    TrustedRootsPem => "trusted_roots_pem",
    KeyType => "key_type",
    RenewalWindowRatio => "renewal_window_ratio",
    RenewCheckInterval => "renew_check_interval",
    DisableHttpChallenge => "disable_http_challenge",
    DisableTlsAlpnChallenge => "disable_tls_alpn_challenge",
    AltHttpPort => "alt_http_port",
    AltTlsAlpnPort => "alt_tls_alpn_port",
    ListenHost => "listen_host",
    ChallengePreference => "challenge_preference",
    DisableDistributedSolvers => "disable_distributed_solvers",
    EabKeyId => "eab_key_id",
    EabHmacKey => "eab_hmac_key",
    PreferredChainRootCn => "preferred_chain_root_cn",
    PreferredChainIssuerCn => "preferred_chain_issuer_cn",
    PreferredChainSmallest => "preferred_chain_smallest",
    Profile => "profile",
    MustStaple => "must_staple",
    DisableOcspStapling => "disable_ocsp_stapling",
    OcspResponderOverride => "ocsp_responder_override",
    OcspCheckInterval => "ocsp_check_interval",
    ReusePrivateKeys => "reuse_private_keys",
    OrderTimeout => "order_timeout",
    RateLimitEvents => "rate_limit_events",
    RateLimitWindow => "rate_limit_window",
    RetryIntervals => "retry_intervals",
    RetryMaxTotal => "retry_max_total",
    Storage => "storage",
    StorageLocation => "storage_location",
    EventHandler => "event_handler",
    OnDemandDecision => "on_demand_decision",
    OnDemandAsk => "on_demand_ask",
    OnDemandAllow => "on_demand_allow",
    OnDemandRateLimitEvents => "on_demand_rate_limit_events",
    OnDemandRateLimitWindow => "on_demand_rate_limit_window",
    OnDemandObtainTimeout => "on_demand_obtain_timeout",
    CacheCapacity => "cache_capacity",
    DnsProvider => "dns_provider",
    DnsOptions => "dns_options",
    DnsTtl => "dns_ttl",
    DnsPropagationDelay => "dns_propagation_delay",
    DnsPropagationTimeout => "dns_propagation_timeout",
    DnsPollInterval => "dns_poll_interval",
    DnsResolvers => "dns_resolvers",
    DnsOverrideDomain => "dns_override_domain",
    DnsFollowCname => "dns_follow_cname",
    CallbackTimeoutStorage => "callback_timeout_storage",
    CallbackTimeoutLock => "callback_timeout_lock",
    CallbackTimeoutDns => "callback_timeout_dns",
    CallbackTimeoutDecision => "callback_timeout_decision",
    CallbackTimeoutEvents => "callback_timeout_events",
    Issuers => "issuers",
    IssuerPolicy => "issuer_policy",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for f in ConfigField::ALL {
            assert_eq!(ConfigField::from_name(f.name()), Some(*f));
            assert!(seen.insert(f.name()), "{f:?}");
        }
    }
}

/* The C API without a CA: every call's error paths (NULL, bad UTF-8, unknown enum values, bad
 * PEM, refused config naming the field), certificates added by PEM and read back through every
 * accessor, events, re-entrancy, shutdown, and userdata freed exactly once.
 *
 * Environment: CM_STORAGE (a scratch folder), CM_UNMANAGED_CRT / CM_UNMANAGED_KEY (a PEM chain
 * and key for unmanaged.example.test). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static const certmagic_manager *g_manager = NULL;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_unmanaged_events = 0;
static certmagic_result g_reentrant_rc = CERTMAGIC_RESULT_OK;
static int g_userdata_frees = 0;
static int g_decision_frees = 0;

static uint32_t on_event(void *userdata, const char *name, const char *payload) {
    (void)userdata;
    if (strcmp(name, "cached_unmanaged_cert") == 0) {
        const char *names[] = {"reentry.example.test"};
        /* A blocking call from inside a callback must be refused, not deadlock. */
        certmagic_result rc = certmagic_manager_manage_sync(g_manager, names, 1);
        pthread_mutex_lock(&g_lock);
        g_reentrant_rc = rc;
        if (strstr(payload, "unmanaged.example.test") != NULL) {
            g_unmanaged_events++;
        }
        pthread_mutex_unlock(&g_lock);
    }
    return CERTMAGIC_RESULT_OK;
}

static uint32_t decide(void *userdata, const char *name) {
    (void)userdata;
    return strcmp(name, "allowed.example.test") == 0 ? CERTMAGIC_RESULT_OK : CERTMAGIC_RESULT_ABORTED;
}

static void free_userdata(void *userdata) {
    int *counter = userdata;
    pthread_mutex_lock(&g_lock);
    (*counter)++;
    pthread_mutex_unlock(&g_lock);
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static void test_results_and_last_error(void) {
    char small[8];
    size_t n = 0;
    CHECK(strstr(certmagic_result_str(CERTMAGIC_RESULT_OK), "CERTMAGIC_RESULT_OK") != NULL);
    CHECK(strstr(certmagic_result_str(CERTMAGIC_RESULT_NOT_FOUND), "NOT_FOUND") != NULL);
    CHECK(certmagic_result_str(12345) != NULL);
    CHECK(strcmp(certmagic_version(), CERTMAGIC_VERSION) == 0);

    /* A failed call leaves a message; it is copied truncated and NUL-terminated. */
    CHECK_RC(certmagic_config_builder_set_ca(NULL, "https://x/dir"), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_OK(certmagic_last_error_message(small, sizeof small, &n));
    CHECK(n > sizeof small);
    CHECK(strlen(small) == sizeof small - 1);
    CHECK_OK(certmagic_last_error_message(NULL, 0, &n));
    CHECK(n > 0);
    CHECK_RC(certmagic_last_error_message(NULL, 4, &n), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_last_error_message(small, sizeof small, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    /* A call that succeeds clears it. */
    CHECK_OK(certmagic_result_str(0) != NULL ? CERTMAGIC_RESULT_OK : CERTMAGIC_RESULT_INTERNAL);
}

/* Builds a fresh builder after `setup` (statements using `x`) and expects the build to be
 * refused with a message naming `setter`, the function a C caller used for the refused value. */
#define CHECK_REFUSED(setup, setter)                                                    \
    do {                                                                                \
        certmagic_config_builder *x = certmagic_config_builder_new();                   \
        const certmagic_config *refused_ = NULL;                                        \
        setup;                                                                          \
        CHECK_RC(certmagic_config_builder_build(x, &refused_), CERTMAGIC_RESULT_INVALID_CONFIG); \
        CHECK_MESSAGE("`" setter "`");                                                  \
        CHECK(refused_ == NULL);                                                        \
    } while (0)

/* Every setter with a value rule: a refused value names the setter (the rules are the core's,
 * and extreme numbers are refused when the config is built, never a crash). */
static void test_refusals_name_the_setter(void) {
    const uint64_t huge[] = {UINT64_MAX};
    const uint32_t dns01[] = {CERTMAGIC_CHALLENGE_TYPE_DNS01};
    const char *pem = "garbage";
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_ca(x, "http://insecure.example/dir")), "certmagic_config_builder_set_ca");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_email(x, "not-an-email")), "certmagic_config_builder_set_email");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_trusted_roots_pem(x, (const uint8_t *)pem, strlen(pem))), "certmagic_config_builder_set_trusted_roots_pem");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_renewal_window_ratio(x, 1.0 / 0.0)), "certmagic_config_builder_set_renewal_window_ratio");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_renew_check_interval_ms(x, UINT64_MAX)), "certmagic_config_builder_set_renew_check_interval_ms");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_renew_check_interval_ms(x, 1)), "certmagic_config_builder_set_renew_check_interval_ms");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_disable_http_challenge(x, true));
                  CHECK_OK(certmagic_config_builder_set_disable_tls_alpn_challenge(x, true)),
                  "certmagic_config_builder_set_disable_tls_alpn_challenge");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_alt_http_port(x, 0)), "certmagic_config_builder_set_alt_http_port");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_alt_tls_alpn_port(x, 0)), "certmagic_config_builder_set_alt_tls_alpn_port");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_alt_http_port(x, 5002));
                  CHECK_OK(certmagic_config_builder_set_alt_tls_alpn_port(x, 5002)),
                  "certmagic_config_builder_set_alt_tls_alpn_port");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_listen_host(x, "a b")), "certmagic_config_builder_set_listen_host");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_challenge_preference(x, dns01, 1)), "certmagic_config_builder_set_challenge_preference");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_eab(x, " ", "a2V5")), "certmagic_config_builder_set_eab");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_eab(x, "kid", "!!!")), "certmagic_config_builder_set_eab");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_add_preferred_root_cn(x, " ")), "certmagic_config_builder_add_preferred_root_cn");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_add_preferred_issuer_cn(x, "")), "certmagic_config_builder_add_preferred_issuer_cn");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_profile(x, "two words")), "certmagic_config_builder_set_profile");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_order_timeout_ms(x, UINT64_MAX)), "certmagic_config_builder_set_order_timeout_ms");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_rate_limit(x, 1, 0)), "certmagic_config_builder_set_rate_limit");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_rate_limit(x, SIZE_MAX, 1000)), "certmagic_config_builder_set_rate_limit");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_retry_intervals_ms(x, huge, 1, 1000)), "certmagic_config_builder_set_retry_intervals_ms");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_retry_intervals_ms(x, NULL, 0, UINT64_MAX)), "certmagic_config_builder_set_retry_intervals_ms");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_on_demand_ask(x, "ftp://x")), "certmagic_config_builder_set_on_demand_ask");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_on_demand_rate_limit(x, 1, 1000)), "certmagic_config_builder_set_on_demand_rate_limit");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_add_on_demand_allow(x, "a.example.test"));
                  CHECK_OK(certmagic_config_builder_set_on_demand_obtain_timeout_ms(x, UINT64_MAX)),
                  "certmagic_config_builder_set_on_demand_obtain_timeout_ms");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_cache_capacity(x, 0)), "certmagic_config_builder_set_cache_capacity");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_add_issuer(x, "{\"type\": \"acme\", \"ca\": \"http://insecure.example/dir\"}")),
                  "certmagic_config_builder_add_issuer");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_add_issuer(x, "{\"type\": \"local\", \"lifetime_secs\": 1}")), "certmagic_config_builder_add_issuer");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_storage_location(x, "redis://:pw@127.0.0.1:6379/0?compression=lz4")),
                  "certmagic_config_builder_set_storage_location");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_storage_location(x, "mongodb://127.0.0.1")), "certmagic_config_builder_set_storage_location");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_dns_provider(x, "{\"provider\": \"rfc2136\", \"server\": \"127.0.0.1\"}", "{\"resolvers\": [\"ns1.example\"]}")),
                  "certmagic_config_builder_set_dns_provider options_json.resolvers");
    CHECK_REFUSED(CHECK_OK(certmagic_config_builder_set_dns_provider(x, "{\"provider\": \"rfc2136\", \"server\": \"127.0.0.1\"}", "{\"poll_interval_ms\": 0}")),
                  "certmagic_config_builder_set_dns_provider options_json.poll_interval_ms");
    /* A provider is checked by its setter. */
    {
        certmagic_config_builder *x = certmagic_config_builder_new();
        CHECK_RC(certmagic_config_builder_set_dns_provider(x, "nope", NULL), CERTMAGIC_RESULT_INVALID_CONFIG);
        CHECK_MESSAGE("`certmagic_config_builder_set_dns_provider`");
        CHECK_RC(certmagic_config_builder_set_dns_provider(x, "{\"provider\": \"rfc2136\"}", "{\"ttl\": 1}"), CERTMAGIC_RESULT_INVALID_CONFIG);
        CHECK_MESSAGE("`certmagic_config_builder_set_dns_provider options_json`");
        certmagic_config_builder_free(x);
    }
}

static void test_builder_errors(void) {
    certmagic_config_builder *b = certmagic_config_builder_new();
    const certmagic_config *config = NULL;
    const uint32_t bad_types[] = {1, 7};
    const uint32_t good_types[] = {CERTMAGIC_CHALLENGE_TYPE_TLS_ALPN01, CERTMAGIC_CHALLENGE_TYPE_HTTP01};
    const uint64_t intervals[] = {100, 200};
    certmagic_storage_callbacks incomplete;
    CHECK(b != NULL);

    CHECK_RC(certmagic_config_builder_set_ca(b, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_MESSAGE("url");
    CHECK_RC(certmagic_config_builder_set_email(b, "\xff\xfe@example.com"), CERTMAGIC_RESULT_INVALID_UTF8);
    CHECK_MESSAGE("email");
    CHECK_RC(certmagic_config_builder_set_key_type(b, 99), CERTMAGIC_RESULT_INVALID_PARAMETER);
    CHECK_MESSAGE("key type 99");
    CHECK_RC(certmagic_config_builder_set_challenge_preference(b, bad_types, 2), CERTMAGIC_RESULT_INVALID_PARAMETER);
    CHECK_RC(certmagic_config_builder_set_challenge_preference(b, NULL, 1), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_config_builder_set_retry_intervals_ms(b, NULL, 2, 1000), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_config_builder_set_trusted_roots_pem(b, NULL, 10), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_config_builder_set_storage_path(b, ""), CERTMAGIC_RESULT_INVALID_PARAMETER);
    CHECK_RC(certmagic_config_builder_set_event_callback(b, NULL, NULL, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_config_builder_set_on_demand_decision(b, NULL, NULL, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    memset(&incomplete, 0, sizeof incomplete);
    CHECK_RC(certmagic_config_builder_set_storage_callbacks(b, &incomplete), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_MESSAGE("callbacks->store");
    CHECK_RC(certmagic_config_builder_set_storage_callbacks(b, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);

    /* Every setter accepts good values. */
    CHECK_OK(certmagic_config_builder_set_ca(b, "https://127.0.0.1:1/dir"));
    CHECK_OK(certmagic_config_builder_set_email(b, "c@example.test"));
    CHECK_OK(certmagic_config_builder_set_agreed(b, true));
    CHECK_OK(certmagic_config_builder_set_key_type(b, CERTMAGIC_KEY_TYPE_P384));
    CHECK_OK(certmagic_config_builder_set_renew_check_interval_ms(b, 60000));
    CHECK_OK(certmagic_config_builder_set_disable_http_challenge(b, false));
    CHECK_OK(certmagic_config_builder_set_disable_tls_alpn_challenge(b, false));
    CHECK_OK(certmagic_config_builder_set_alt_http_port(b, 8080));
    CHECK_OK(certmagic_config_builder_set_alt_tls_alpn_port(b, 8443));
    CHECK_OK(certmagic_config_builder_set_listen_host(b, "127.0.0.1"));
    CHECK_OK(certmagic_config_builder_set_challenge_preference(b, good_types, 2));
    CHECK_OK(certmagic_config_builder_set_disable_distributed_solvers(b, false));
    CHECK_OK(certmagic_config_builder_set_eab(b, "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"));
    CHECK_OK(certmagic_config_builder_add_preferred_root_cn(b, "Root X"));
    CHECK_OK(certmagic_config_builder_add_preferred_issuer_cn(b, "Issuer Y"));
    CHECK_OK(certmagic_config_builder_set_preferred_chain_smallest(b, true));
    CHECK_OK(certmagic_config_builder_set_profile(b, "shortlived"));
    CHECK_OK(certmagic_config_builder_set_must_staple(b, false));
    CHECK_OK(certmagic_config_builder_set_reuse_private_keys(b, true));
    CHECK_OK(certmagic_config_builder_set_order_timeout_ms(b, 30000));
    CHECK_OK(certmagic_config_builder_set_rate_limit(b, 5, 1000));
    CHECK_OK(certmagic_config_builder_set_retry_intervals_ms(b, intervals, 2, 60000));
    CHECK_OK(certmagic_config_builder_set_storage_path(b, need_env("CM_STORAGE")));

    /* A refused value names its field; the builder is consumed either way. */
    CHECK_OK(certmagic_config_builder_set_renewal_window_ratio(b, 2.0));
    CHECK_RC(certmagic_config_builder_build(b, &config), CERTMAGIC_RESULT_INVALID_CONFIG);
    CHECK_MESSAGE("`certmagic_config_builder_set_renewal_window_ratio`");
    CHECK(config == NULL);

    b = certmagic_config_builder_new();
    CHECK_OK(certmagic_config_builder_set_ca(b, "http://insecure.example/dir"));
    CHECK_RC(certmagic_config_builder_build(b, &config), CERTMAGIC_RESULT_INVALID_CONFIG);
    CHECK_MESSAGE("`certmagic_config_builder_set_ca`");

    b = certmagic_config_builder_new();
    CHECK_RC(certmagic_config_builder_build(b, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_config_builder_build(NULL, &config), CERTMAGIC_RESULT_NULL_PARAMETER);

    certmagic_config_builder_free(certmagic_config_builder_new());
    certmagic_config_builder_free(NULL);
    certmagic_config_free(NULL);
    certmagic_manager_free(NULL);
    certmagic_certificate_free(NULL);
    CHECK_RC(certmagic_set_log_callback(NULL, NULL, NULL, 42), CERTMAGIC_RESULT_INVALID_PARAMETER);
}

static void test_manager(void) {
    certmagic_config_builder *b = certmagic_config_builder_new();
    const certmagic_config *config = NULL;
    const certmagic_manager *manager = NULL;
    const certmagic_certificate *cert = NULL;
    const certmagic_certificate *again = NULL;
    certmagic_bytes view;
    char buf[256];
    size_t n = 0, crt_len = 0, key_len = 0, i;
    char *crt = read_file(need_env("CM_UNMANAGED_CRT"), &crt_len);
    char *key = read_file(need_env("CM_UNMANAGED_KEY"), &key_len);
    const char *bad_names[] = {"bad name.example.test"};
    const char *wild[] = {"*.example.test"};
    certmagic_bytes h2;
    int waited;

    CHECK_OK(certmagic_config_builder_set_ca(b, "https://127.0.0.1:1/dir"));
    CHECK_OK(certmagic_config_builder_set_storage_path(b, need_env("CM_STORAGE")));
    CHECK_OK(certmagic_config_builder_set_event_callback(b, on_event, &g_userdata_frees, free_userdata));
    CHECK_OK(certmagic_config_builder_set_on_demand_decision(b, decide, &g_decision_frees, free_userdata));
    CHECK_OK(certmagic_config_builder_build(b, &config));
    CHECK_RC(certmagic_manager_new(NULL, &manager), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_manager_new(config, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_OK(certmagic_manager_new(config, &manager));
    certmagic_config_free(config); /* the manager keeps what it needs */
    g_manager = manager;

    /* Names and PEM are checked. */
    CHECK_RC(certmagic_manager_manage_sync(manager, bad_names, 1), CERTMAGIC_RESULT_INVALID_NAME);
    CHECK_MESSAGE("bad name.example.test");
    CHECK_RC(certmagic_manager_manage_sync(manager, wild, 1), CERTMAGIC_RESULT_INVALID_NAME);
    CHECK_MESSAGE("DNS-01");
    CHECK_RC(certmagic_manager_manage_sync(manager, NULL, 1), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_manager_manage_background(manager, bad_names, 1), CERTMAGIC_RESULT_INVALID_NAME);
    CHECK_RC(certmagic_manager_load_stored_sync(manager, bad_names, 1, NULL), CERTMAGIC_RESULT_INVALID_NAME);
    CHECK_RC(certmagic_manager_load_stored_sync(manager, NULL, 1, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_manager_revoke_sync(manager, "x.example.test", 2), CERTMAGIC_RESULT_INVALID_PARAMETER);
    CHECK_RC(certmagic_manager_revoke_sync(manager, "nothing.example.test", 4), CERTMAGIC_RESULT_NOT_FOUND);
    CHECK_RC(certmagic_manager_renew_sync(manager, "nothing.example.test", NULL), CERTMAGIC_RESULT_NOT_FOUND);
    CHECK_RC(certmagic_manager_get_certificate(manager, "unmanaged.example.test", &cert), CERTMAGIC_RESULT_NOT_FOUND);
    CHECK_RC(certmagic_manager_get_certificate(manager, "unmanaged.example.test", NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_manager_add_certificate(manager, (const uint8_t *)"junk", 4, (const uint8_t *)key, key_len, NULL),
             CERTMAGIC_RESULT_CERTIFICATE);
    CHECK_RC(certmagic_manager_add_certificate(manager, (const uint8_t *)crt, crt_len, (const uint8_t *)"junk", 4, NULL),
             CERTMAGIC_RESULT_CERTIFICATE);

    /* A certificate added by PEM is served and readable through every accessor. */
    CHECK_OK(certmagic_manager_add_certificate(manager, (const uint8_t *)crt, crt_len, (const uint8_t *)key, key_len, &cert));
    CHECK(cert != NULL);
    CHECK_OK(certmagic_manager_get_certificate(manager, "Unmanaged.Example.Test", &again));
    CHECK(certmagic_certificate_chain_len(again) == certmagic_certificate_chain_len(cert));
    CHECK(certmagic_certificate_chain_len(cert) >= 1);
    CHECK(certmagic_certificate_chain_len(NULL) == 0);
    CHECK_OK(certmagic_certificate_chain_pem(cert, &view));
    CHECK(view.len > 100 && memcmp(view.data, "-----BEGIN CERTIFICATE-----", 27) == 0);
    CHECK(view.len == crt_len || view.len + 1 == crt_len || view.len <= crt_len);
    CHECK_OK(certmagic_certificate_chain_der(cert, 0, &view));
    CHECK(view.len > 100 && view.data[0] == 0x30);
    CHECK_RC(certmagic_certificate_chain_der(cert, 99, &view), CERTMAGIC_RESULT_INVALID_PARAMETER);
    CHECK_MESSAGE("index 99");
    CHECK_RC(certmagic_certificate_chain_der(NULL, 0, &view), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_certificate_chain_der(cert, 0, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_OK(certmagic_certificate_key_pem(cert, &view));
    CHECK(view.len > 50 && strstr((const char *)view.data, "PRIVATE KEY-----") != NULL);
    CHECK_OK(certmagic_certificate_key_der(cert, &view));
    CHECK(view.len > 30 && view.data[0] == 0x30);
    CHECK(certmagic_certificate_names_len(cert) >= 1);
    for (i = 0; i < certmagic_certificate_names_len(cert); i++) {
        CHECK_OK(certmagic_certificate_names_get(cert, i, &view));
    }
    CHECK_OK(certmagic_certificate_names_get(cert, 0, &view));
    CHECK(view.len == strlen("unmanaged.example.test") && memcmp(view.data, "unmanaged.example.test", view.len) == 0);
    CHECK_RC(certmagic_certificate_names_get(cert, 42, &view), CERTMAGIC_RESULT_INVALID_PARAMETER);
    CHECK(certmagic_certificate_not_before(cert) > 1600000000);
    CHECK(certmagic_certificate_not_after(cert) > certmagic_certificate_not_before(cert));
    CHECK(certmagic_certificate_not_after(NULL) == 0);
    CHECK_OK(certmagic_certificate_ocsp_staple(cert, &view));
    CHECK(view.len == 0);
    CHECK(!certmagic_certificate_is_managed(cert));
    certmagic_certificate_free(again);

    /* Challenge entry points tell requests that are not challenges apart. */
    CHECK_RC(certmagic_manager_http_challenge_sync(manager, "unmanaged.example.test", "/index.html", buf, sizeof buf, &n),
             CERTMAGIC_RESULT_NOT_A_CHALLENGE);
    CHECK_RC(certmagic_manager_http_challenge_sync(manager, "a.test", "/.well-known/acme-challenge/tok", buf, sizeof buf, &n),
             CERTMAGIC_RESULT_NOT_A_CHALLENGE);
    CHECK_RC(certmagic_manager_http_challenge_sync(manager, "a.test", "/", buf, sizeof buf, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    h2.data = (const uint8_t *)"h2";
    h2.len = 2;
    CHECK_RC(certmagic_manager_tls_alpn_challenge_sync(manager, "a.test", &h2, 1, &again), CERTMAGIC_RESULT_NOT_A_CHALLENGE);
    CHECK_RC(certmagic_manager_tls_alpn_challenge_sync(manager, "a.test", NULL, 1, &again), CERTMAGIC_RESULT_NULL_PARAMETER);

    /* The cached_unmanaged_cert event arrives, and a blocking call from it is refused. */
    for (waited = 0; waited < 100; waited++) {
        pthread_mutex_lock(&g_lock);
        n = (size_t)g_unmanaged_events;
        pthread_mutex_unlock(&g_lock);
        if (n > 0) {
            break;
        }
        sleep_ms(50);
    }
    pthread_mutex_lock(&g_lock);
    CHECK(g_unmanaged_events >= 1);
    CHECK(g_reentrant_rc == CERTMAGIC_RESULT_REENTRANT);
    pthread_mutex_unlock(&g_lock);

    /* Shutdown: later calls are refused; the event userdata is freed once, when all is gone. */
    CHECK_OK(certmagic_manager_shutdown_sync(manager));
    CHECK_OK(certmagic_manager_shutdown_sync(manager));
    CHECK_RC(certmagic_manager_manage_sync(manager, wild, 0), CERTMAGIC_RESULT_SHUT_DOWN);
    certmagic_certificate_free(cert);
    certmagic_manager_free(manager);
    g_manager = NULL;
    for (waited = 0; waited < 100; waited++) {
        pthread_mutex_lock(&g_lock);
        n = (size_t)g_userdata_frees;
        pthread_mutex_unlock(&g_lock);
        if (n > 0) {
            break;
        }
        sleep_ms(50);
    }
    sleep_ms(100);
    pthread_mutex_lock(&g_lock);
    CHECK(g_userdata_frees == 1);
    CHECK(g_decision_frees == 1);
    pthread_mutex_unlock(&g_lock);
    free(crt);
    free(key);
}

/* Userdata that must be freed exactly once: malloc'd, so valgrind reports a leak if it is never
 * freed and an invalid free if it is freed twice. */
static int g_failed_frees = 0;

static void free_owned(void *userdata) {
    free(userdata);
    pthread_mutex_lock(&g_lock);
    g_failed_frees++;
    pthread_mutex_unlock(&g_lock);
}

static void *owned(void) {
    return malloc(16);
}

static uint32_t no_store(void *u, const char *k, const uint8_t *v, size_t n) {
    (void)u, (void)k, (void)v, (void)n;
    return CERTMAGIC_RESULT_STORAGE;
}

static uint32_t no_records(void *u, const char *zone, const char *json, certmagic_buffer *out) {
    (void)u, (void)zone, (void)json, (void)out;
    return CERTMAGIC_RESULT_CHALLENGE;
}

static void no_log(void *u, uint32_t level, const char *message) {
    (void)u, (void)level, (void)message;
}

/* One rule for every function that takes a userdata_free: the library owns the userdata from
 * the call on, and frees it before returning when the call fails. */
static void test_userdata_of_failed_registrations_is_freed_once(void) {
    certmagic_config_builder *b = certmagic_config_builder_new();
    certmagic_storage_callbacks storage;
    certmagic_dns_provider_callbacks dns;
    int expected = 0;

    CHECK_RC(certmagic_config_builder_set_event_callback(NULL, on_event, owned(), free_owned),
             CERTMAGIC_RESULT_NULL_PARAMETER);
    expected++;
    CHECK_RC(certmagic_config_builder_set_event_callback(b, NULL, owned(), free_owned), CERTMAGIC_RESULT_NULL_PARAMETER);
    expected++;
    CHECK_RC(certmagic_config_builder_set_on_demand_decision(NULL, decide, owned(), free_owned),
             CERTMAGIC_RESULT_NULL_PARAMETER);
    expected++;
    CHECK_RC(certmagic_config_builder_set_on_demand_decision(b, NULL, owned(), free_owned),
             CERTMAGIC_RESULT_NULL_PARAMETER);
    expected++;

    memset(&storage, 0, sizeof storage);
    storage.userdata = owned();
    storage.store = no_store; /* every other member missing */
    storage.userdata_free = free_owned;
    CHECK_RC(certmagic_config_builder_set_storage_callbacks(b, &storage), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_MESSAGE("callbacks->load");
    expected++;
    storage.userdata = owned();
    CHECK_RC(certmagic_config_builder_set_storage_callbacks(NULL, &storage), CERTMAGIC_RESULT_NULL_PARAMETER);
    expected++;

    memset(&dns, 0, sizeof dns);
    dns.userdata = owned();
    dns.append_records = no_records; /* delete_records missing */
    dns.userdata_free = free_owned;
    CHECK_RC(certmagic_config_builder_set_dns_provider_callbacks(b, &dns, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    expected++;
    dns.userdata = owned();
    dns.delete_records = no_records;
    CHECK_RC(certmagic_config_builder_set_dns_provider_callbacks(b, &dns, "{not json"), CERTMAGIC_RESULT_INVALID_CONFIG);
    expected++;
    dns.userdata = owned();
    CHECK_RC(certmagic_config_builder_set_dns_provider_callbacks(NULL, &dns, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    expected++;

    CHECK_RC(certmagic_set_log_callback(no_log, owned(), free_owned, 99), CERTMAGIC_RESULT_INVALID_PARAMETER);
    expected++;

    pthread_mutex_lock(&g_lock);
    CHECK(g_failed_frees == expected);
    pthread_mutex_unlock(&g_lock);
    certmagic_config_builder_free(b);
}

/* Issuers: specs are checked (malformed at once, bad values at build, naming the setter); the
 * local CA issues without any CA to reach, and its root comes out whole or truncated with its
 * full length. */
static void test_issuers(void) {
    certmagic_config_builder *b = certmagic_config_builder_new();
    const certmagic_config *config = NULL;
    const certmagic_manager *manager = NULL;
    const certmagic_certificate *cert = NULL;
    char small[16];
    char *pem;
    size_t n = 0, full = 0;

    CHECK_RC(certmagic_config_builder_add_issuer(b, "zerossl-ish"), CERTMAGIC_RESULT_INVALID_CONFIG);
    CHECK_MESSAGE("`certmagic_config_builder_add_issuer`");
    CHECK_RC(certmagic_config_builder_add_issuer(b, "{\"type\": \"acme\", \"ca\": 1}"), CERTMAGIC_RESULT_INVALID_CONFIG);
    CHECK_RC(certmagic_config_builder_add_issuer(b, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_config_builder_set_issuer_policy(b, 0), CERTMAGIC_RESULT_INVALID_PARAMETER);
    CHECK_OK(certmagic_config_builder_set_issuer_policy(b, CERTMAGIC_ISSUER_POLICY_RANDOM));
    CHECK_OK(certmagic_config_builder_add_issuer(b, "{\"type\": \"local\", \"lifetime_secs\": 3600}"));
    CHECK_OK(certmagic_config_builder_set_storage_path(b, need_env("CM_STORAGE")));
    CHECK_OK(certmagic_config_builder_build(b, &config));
    CHECK_OK(certmagic_manager_new(config, &manager));

    CHECK_RC(certmagic_manager_local_root_pem(manager, small, sizeof small, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_manager_local_root_pem(manager, NULL, 4, &n), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_OK(certmagic_manager_local_root_pem(manager, NULL, 0, &full));
    CHECK(full > 100);
    CHECK_OK(certmagic_manager_local_root_pem(manager, small, sizeof small, &n));
    CHECK(n == full && strlen(small) == sizeof small - 1);
    pem = calloc(full + 1, 1);
    CHECK_OK(certmagic_manager_local_root_pem(manager, pem, full + 1, &n));
    CHECK(n == full && strlen(pem) == full && strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    free(pem);

    CHECK_OK(certmagic_manager_obtain_sync(manager, "localhost", &cert));
    CHECK(cert != NULL && certmagic_certificate_chain_len(cert) == 2);
    certmagic_certificate_free(cert);
    CHECK_OK(certmagic_manager_shutdown_sync(manager));
    certmagic_manager_free(manager);
    certmagic_config_free(config);

    /* A manager without the local CA has no root to give. */
    b = certmagic_config_builder_new();
    CHECK_OK(certmagic_config_builder_set_ca(b, "https://127.0.0.1:1/dir"));
    CHECK_OK(certmagic_config_builder_set_storage_path(b, need_env("CM_STORAGE")));
    CHECK_OK(certmagic_config_builder_build(b, &config));
    CHECK_OK(certmagic_manager_new(config, &manager));
    CHECK_RC(certmagic_manager_local_root_pem(manager, NULL, 0, &n), CERTMAGIC_RESULT_NOT_FOUND);
    CHECK_MESSAGE("local");
    CHECK_OK(certmagic_manager_shutdown_sync(manager));
    certmagic_manager_free(manager);
    certmagic_config_free(config);
}

int main(void) {
    test_results_and_last_error();
    test_userdata_of_failed_registrations_is_freed_once();
    test_builder_errors();
    test_refusals_name_the_setter();
    test_manager();
    test_issuers();
    return check_summary("test_api");
}

/* DNS-01 through the C API, against a real BIND9 that Pebble resolves through:
 *  A. a built-in provider given as JSON (RFC 2136 with TSIG): a wildcard certificate;
 *  B. a provider implemented by C callbacks below, which run `nsupdate` and hand back a
 *     provider id that must come back to delete_records;
 *  C. refusals: unknown provider, bad options, missing callbacks (userdata freed once), and a
 *     failing callback that fails the obtain with a message naming it.
 * Chains are written to CM_OUT/<name>.pem for the harness to verify against Pebble's root.
 *
 * Environment: CM_CA, CM_CA_ROOTS (PEM file), CM_DNS_PORT, CM_TSIG_KEY, CM_TSIG_SECRET, CM_OUT. */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "check.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_appends = 0, g_deletes = 0, g_deletes_with_id = 0, g_frees = 0;

static certmagic_config_builder *base_builder(void) {
    certmagic_config_builder *b = certmagic_config_builder_new();
    size_t roots_len = 0;
    char *roots = read_file(need_env("CM_CA_ROOTS"), &roots_len);
    CHECK_OK(certmagic_config_builder_set_ca(b, need_env("CM_CA")));
    CHECK_OK(certmagic_config_builder_set_trusted_roots_pem(b, (const uint8_t *)roots, roots_len));
    CHECK_OK(certmagic_config_builder_set_agreed(b, true));
    CHECK_OK(certmagic_config_builder_set_rate_limit(b, 0, 0));
    free(roots);
    return b;
}

static void options_json(char *out, size_t len) {
    snprintf(out, len,
             "{\"resolvers\": [\"127.0.0.1:%s\"], \"poll_interval_ms\": 200, "
             "\"propagation_timeout_ms\": 20000}",
             need_env("CM_DNS_PORT"));
}

static void save_chain(const certmagic_manager *m, const char *name, const char *file) {
    const certmagic_certificate *cert = NULL;
    certmagic_bytes pem;
    char path[1024];
    FILE *f;
    CHECK_OK(certmagic_manager_get_certificate(m, name, &cert));
    if (cert == NULL) {
        return;
    }
    CHECK_OK(certmagic_certificate_chain_pem(cert, &pem));
    snprintf(path, sizeof path, "%s/%s.pem", need_env("CM_OUT"), file);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f != NULL) {
        fwrite(pem.data, 1, pem.len, f);
        fclose(f);
    }
    certmagic_certificate_free(cert);
}

/* Copies the string value of "key" in a flat JSON object into out. */
static int json_field(const char *json, const char *key, char *out, size_t len) {
    char pattern[64];
    const char *start, *end;
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    start = strstr(json, pattern);
    if (start == NULL) {
        return 0;
    }
    start += strlen(pattern);
    end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= len) {
        return 0;
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return 1;
}

/* Runs nsupdate for one record: "add" or "delete". */
static int nsupdate(const char *action, const char *zone, const char *records_json) {
    char name[256], value[256], cmd[512];
    FILE *p;
    if (!json_field(records_json, "name", name, sizeof name) ||
        !json_field(records_json, "value", value, sizeof value)) {
        return 0;
    }
    snprintf(cmd, sizeof cmd, "nsupdate -y hmac-sha256:%s:%s", need_env("CM_TSIG_KEY"),
             need_env("CM_TSIG_SECRET"));
    p = popen(cmd, "w");
    if (p == NULL) {
        return 0;
    }
    fprintf(p, "server 127.0.0.1 %s\nzone %s\nupdate %s %s.%s 60 TXT \"%s\"\nsend\n",
            need_env("CM_DNS_PORT"), zone, action, name, zone, value);
    return pclose(p) == 0;
}

static uint32_t append_records(void *userdata, const char *zone, const char *records_json,
                               certmagic_buffer *out) {
    char created[1024];
    size_t n;
    (void)userdata;
    if (!nsupdate("add", zone, records_json)) {
        return CERTMAGIC_RESULT_INTERNAL;
    }
    pthread_mutex_lock(&g_lock);
    g_appends++;
    pthread_mutex_unlock(&g_lock);
    /* Hand back the records as created, with an id of ours. */
    n = strlen(records_json);
    if (n < 3 || n + 32 > sizeof created) {
        return CERTMAGIC_RESULT_INTERNAL;
    }
    memcpy(created, records_json, n - 2);
    strcpy(created + n - 2, ",\"id\":\"c-record-1\"}]");
    certmagic_buffer_set(out, (const uint8_t *)created, strlen(created));
    return CERTMAGIC_RESULT_OK;
}

static uint32_t delete_records(void *userdata, const char *zone, const char *records_json,
                               certmagic_buffer *out) {
    (void)userdata;
    (void)out;
    pthread_mutex_lock(&g_lock);
    g_deletes++;
    if (strstr(records_json, "\"id\":\"c-record-1\"") != NULL) {
        g_deletes_with_id++;
    }
    pthread_mutex_unlock(&g_lock);
    return nsupdate("delete", zone, records_json) ? CERTMAGIC_RESULT_OK : CERTMAGIC_RESULT_INTERNAL;
}

static uint32_t failing_append(void *userdata, const char *zone, const char *records_json,
                               certmagic_buffer *out) {
    (void)userdata;
    (void)zone;
    (void)records_json;
    (void)out;
    return CERTMAGIC_RESULT_STORAGE;
}

static void count_free(void *userdata) {
    pthread_mutex_lock(&g_lock);
    g_frees++;
    pthread_mutex_unlock(&g_lock);
    (void)userdata;
}

static void obtain_with(certmagic_config_builder *b, const char *name, const char *file) {
    const certmagic_config *config = NULL;
    const certmagic_manager *m = NULL;
    const certmagic_certificate *cert = NULL;
    CHECK_OK(certmagic_config_builder_build(b, &config));
    CHECK_OK(certmagic_manager_new(config, &m));
    CHECK_OK(certmagic_manager_obtain_sync(m, name, &cert));
    certmagic_certificate_free(cert);
    save_chain(m, name, file);
    CHECK_OK(certmagic_manager_shutdown_sync(m));
    certmagic_manager_free(m);
    certmagic_config_free(config);
}

static void part_a_builtin_provider(void) {
    certmagic_config_builder *b = base_builder();
    char provider[512], options[256];
    snprintf(provider, sizeof provider,
             "{\"provider\": \"rfc2136\", \"server\": \"127.0.0.1:%s\", \"key_name\": \"%s\", "
             "\"key_secret\": \"%s\"}",
             need_env("CM_DNS_PORT"), need_env("CM_TSIG_KEY"), need_env("CM_TSIG_SECRET"));
    options_json(options, sizeof options);
    CHECK_OK(certmagic_config_builder_set_dns_provider(b, provider, options));
    obtain_with(b, "*.c-wild.bind.test", "wildcard");
}

static void part_b_callback_provider(void) {
    certmagic_config_builder *b = base_builder();
    char options[256];
    certmagic_dns_provider_callbacks cb = {NULL, append_records, delete_records, count_free};
    options_json(options, sizeof options);
    CHECK_OK(certmagic_config_builder_set_dns_provider_callbacks(b, &cb, options));
    obtain_with(b, "c-callback.bind.test", "c-callback.bind.test");
    pthread_mutex_lock(&g_lock);
    CHECK(g_appends == 1);
    CHECK(g_deletes == 1);
    CHECK(g_deletes_with_id == 1);
    CHECK(g_frees == 1);
    pthread_mutex_unlock(&g_lock);
}

static void part_c_refusals(void) {
    certmagic_config_builder *b = base_builder();
    const certmagic_config *config = NULL;
    const certmagic_manager *m = NULL;
    const certmagic_certificate *cert = NULL;
    char options[256];
    certmagic_dns_provider_callbacks missing = {NULL, append_records, NULL, count_free};
    certmagic_dns_provider_callbacks failing = {NULL, failing_append, delete_records, NULL};

    CHECK_RC(certmagic_config_builder_set_dns_provider(b, "{\"provider\": \"nope\", \"x\": 1}", NULL),
             CERTMAGIC_RESULT_INVALID_CONFIG);
    CHECK(strstr(last_error(), "unknown DNS provider `nope`") != NULL);
    CHECK_RC(certmagic_config_builder_set_dns_provider(
                 b, "{\"provider\": \"rfc2136\", \"server\": \"127.0.0.1\"}", "{\"ttl\": 5}"),
             CERTMAGIC_RESULT_INVALID_CONFIG);
    CHECK(strstr(last_error(), "`certmagic_config_builder_set_dns_provider options_json`") != NULL);
    CHECK_RC(certmagic_config_builder_set_dns_provider(b, NULL, NULL), CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK_RC(certmagic_config_builder_set_dns_provider_callbacks(b, &missing, NULL),
             CERTMAGIC_RESULT_NULL_PARAMETER);
    CHECK(strstr(last_error(), "delete_records") != NULL);
    pthread_mutex_lock(&g_lock);
    CHECK(g_frees == 2);
    pthread_mutex_unlock(&g_lock);

    options_json(options, sizeof options);
    CHECK_OK(certmagic_config_builder_set_dns_provider_callbacks(b, &failing, options));
    CHECK_OK(certmagic_config_builder_build(b, &config));
    CHECK_OK(certmagic_manager_new(config, &m));
    CHECK_RC(certmagic_manager_obtain_sync(m, "c-failing.bind.test", &cert), CERTMAGIC_RESULT_CHALLENGE);
    CHECK(strstr(last_error(), "append_records") != NULL);
    CHECK(cert == NULL);
    CHECK_OK(certmagic_manager_shutdown_sync(m));
    certmagic_manager_free(m);
    certmagic_config_free(config);
}

int main(void) {
    part_a_builtin_provider();
    part_b_callback_provider();
    part_c_refusals();
    return check_summary("test_dns");
}

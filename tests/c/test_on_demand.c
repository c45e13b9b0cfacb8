/* On-demand TLS through the C API against Pebble (validation on): the blocking call for
 * threaded servers, the start/poll pair with a ready callback for event-loop servers, a name
 * the decision callback refuses (no order reaches the CA), a pending handle freed before it is
 * ready, every spelling of a failing name backed off as one name, and the on-demand settings'
 * errors. Chains are written to CM_OUT/<name>.pem for the
 * harness to verify against Pebble's root.
 *
 * Environment: CM_CA, CM_CA_ROOTS (PEM file), CM_HTTP_PORT, CM_TLS_PORT, CM_OUT. */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_ready_cond = PTHREAD_COND_INITIALIZER;
static int g_decisions = 0, g_frees = 0;

static uint32_t decide(void *userdata, const char *name) {
    size_t n = strlen(name);
    (void)userdata;
    pthread_mutex_lock(&g_lock);
    g_decisions++;
    pthread_mutex_unlock(&g_lock);
    return (n > 8 && strcmp(name + n - 8, ".ok.test") == 0) ? CERTMAGIC_RESULT_OK : CERTMAGIC_RESULT_ABORTED;
}

static void count_free(void *userdata) {
    (void)userdata;
    pthread_mutex_lock(&g_lock);
    g_frees++;
    pthread_mutex_unlock(&g_lock);
}

static void on_ready(void *userdata) {
    pthread_mutex_lock(&g_lock);
    (*(int *)userdata)++;
    pthread_cond_broadcast(&g_ready_cond);
    pthread_mutex_unlock(&g_lock);
}

static int g_down_decisions = 0;
static char g_down_name[256];

static uint32_t decide_down(void *userdata, const char *name) {
    (void)userdata;
    pthread_mutex_lock(&g_lock);
    g_down_decisions++;
    snprintf(g_down_name, sizeof g_down_name, "%s", name);
    pthread_mutex_unlock(&g_lock);
    return CERTMAGIC_RESULT_OK;
}

/* With the CA down, the first handshake for a name fails; every other spelling of that name
 * is the same name (backed off, not a new order, not a new decision), and names that could
 * never have a certificate reach neither the decision nor storage. */
static void spellings_are_one_name(void) {
    certmagic_config_builder *b = certmagic_config_builder_new();
    const certmagic_config *config = NULL;
    const certmagic_manager *m = NULL;
    const certmagic_certificate *cert = NULL;
    char storage[1024];
    const char *spellings[] = {"spelled.down.test", "SPELLED.DOWN.TEST", "spelled.down.test.", "Spelled.Down.Test"};
    const char *bad[] = {"..", "../x", "spelled.down.test ", " spelled.down.test", "*.down.test", "a..down.test"};
    size_t i;
    snprintf(storage, sizeof storage, "%s/down-storage", need_env("CM_OUT"));
    CHECK_OK(certmagic_config_builder_set_ca(b, "https://127.0.0.1:1/dir"));
    CHECK_OK(certmagic_config_builder_set_storage_path(b, storage));
    CHECK_OK(certmagic_config_builder_set_on_demand_decision(b, decide_down, NULL, NULL));
    CHECK_OK(certmagic_config_builder_build(b, &config));
    CHECK_OK(certmagic_manager_new(config, &m));

    CHECK(certmagic_manager_certificate_for_handshake_sync(m, "Spelled.DOWN.test.", NULL, 0, 0, &cert) !=
          CERTMAGIC_RESULT_OK);
    pthread_mutex_lock(&g_lock);
    CHECK(strcmp(g_down_name, "spelled.down.test") == 0);
    pthread_mutex_unlock(&g_lock);
    for (i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        CHECK(certmagic_manager_certificate_for_handshake_sync(m, spellings[i], NULL, 0, 0, &cert) !=
              CERTMAGIC_RESULT_OK);
        CHECK(strstr(last_error(), "next attempt") != NULL);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_RC(certmagic_manager_certificate_for_handshake_sync(m, bad[i], NULL, 0, 0, &cert),
                 CERTMAGIC_RESULT_NOT_FOUND);
    }
    pthread_mutex_lock(&g_lock);
    CHECK(g_down_decisions == 1);
    pthread_mutex_unlock(&g_lock);
    CHECK(cert == NULL);
    CHECK_OK(certmagic_manager_shutdown_sync(m));
    certmagic_manager_free(m);
    certmagic_config_free(config);
}

static certmagic_config_builder *base_builder(void) {
    certmagic_config_builder *b = certmagic_config_builder_new();
    size_t roots_len = 0;
    char *roots = read_file(need_env("CM_CA_ROOTS"), &roots_len);
    CHECK_OK(certmagic_config_builder_set_ca(b, need_env("CM_CA")));
    CHECK_OK(certmagic_config_builder_set_trusted_roots_pem(b, (const uint8_t *)roots, roots_len));
    CHECK_OK(certmagic_config_builder_set_agreed(b, true));
    CHECK_OK(certmagic_config_builder_set_alt_http_port(b, (uint16_t)atoi(need_env("CM_HTTP_PORT"))));
    CHECK_OK(certmagic_config_builder_set_alt_tls_alpn_port(b, (uint16_t)atoi(need_env("CM_TLS_PORT"))));
    CHECK_OK(certmagic_config_builder_set_listen_host(b, "127.0.0.1"));
    CHECK_OK(certmagic_config_builder_set_rate_limit(b, 0, 0));
    free(roots);
    return b;
}

static void save(const certmagic_certificate *cert, const char *name) {
    certmagic_bytes pem;
    char path[1024];
    FILE *f;
    CHECK_OK(certmagic_certificate_chain_pem(cert, &pem));
    snprintf(path, sizeof path, "%s/%s.pem", need_env("CM_OUT"), name);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f != NULL) {
        fwrite(pem.data, 1, pem.len, f);
        fclose(f);
    }
}

int main(void) {
    certmagic_config_builder *b = base_builder();
    const certmagic_config *config = NULL;
    const certmagic_manager *m = NULL;
    const certmagic_certificate *cert = NULL;
    certmagic_pending *pending = NULL, *abandoned = NULL;
    int ready = 0, ignored = 0;
    certmagic_result rc;
    const uint8_t h2[] = "h2";
    certmagic_bytes alpn[1];
    alpn[0].data = h2;
    alpn[0].len = 2;

    CHECK_OK(certmagic_config_builder_set_on_demand_decision(b, decide, NULL, count_free));
    CHECK_OK(certmagic_config_builder_set_cache_capacity(b, 100));
    CHECK_OK(certmagic_config_builder_build(b, &config));
    CHECK_OK(certmagic_manager_new(config, &m));

    /* Threaded servers: block until the certificate is there. */
    CHECK_OK(certmagic_manager_certificate_for_handshake_sync(m, "c-sync.ok.test", alpn, 1, 0, &cert));
    CHECK(cert != NULL);
    if (cert != NULL) {
        save(cert, "c-sync.ok.test");
        certmagic_certificate_free(cert);
        cert = NULL;
    }

    /* Refused by the decision: no certificate, no order. */
    CHECK_RC(certmagic_manager_certificate_for_handshake_sync(m, "c-evil.example.test", NULL, 0, 0, &cert),
             CERTMAGIC_RESULT_ABORTED);
    CHECK(strstr(last_error(), "refused") != NULL);
    CHECK(cert == NULL);
    CHECK_RC(certmagic_manager_certificate_for_handshake_sync(m, NULL, NULL, 0, 0, &cert),
             CERTMAGIC_RESULT_NOT_FOUND);

    /* Event loops: start, get told, poll. */
    CHECK_OK(certmagic_manager_certificate_for_handshake_start(m, "c-poll.ok.test", alpn, 1, on_ready, &ready, &pending));
    pthread_mutex_lock(&g_lock);
    while (ready == 0) {
        pthread_cond_wait(&g_ready_cond, &g_lock);
    }
    pthread_mutex_unlock(&g_lock);
    CHECK(ready == 1);
    CHECK_OK(certmagic_pending_poll(pending, &cert));
    if (cert != NULL) {
        save(cert, "c-poll.ok.test");
        certmagic_certificate_free(cert);
        cert = NULL;
    }
    certmagic_pending_free(pending);

    /* A pending handle given up on before it is ready. */
    CHECK_OK(certmagic_manager_certificate_for_handshake_start(m, "c-abandoned.ok.test", NULL, 0, NULL, &ignored, &abandoned));
    rc = certmagic_pending_poll(abandoned, &cert);
    CHECK(rc == CERTMAGIC_RESULT_PENDING || rc == CERTMAGIC_RESULT_OK);
    if (cert != NULL) {
        certmagic_certificate_free(cert);
    }
    certmagic_pending_free(abandoned);
    certmagic_pending_free(NULL);
    CHECK_RC(certmagic_pending_poll(NULL, &cert), CERTMAGIC_RESULT_NULL_PARAMETER);

    CHECK_OK(certmagic_manager_shutdown_sync(m));
    certmagic_manager_free(m);
    certmagic_config_free(config);

    spellings_are_one_name();

    /* Settings that make no sense are refused, naming what is wrong. */
    b = certmagic_config_builder_new();
    CHECK_OK(certmagic_config_builder_set_on_demand_rate_limit(b, 5, 60000));
    CHECK_RC(certmagic_config_builder_build(b, &config), CERTMAGIC_RESULT_INVALID_CONFIG);
    CHECK(strstr(last_error(), "`certmagic_config_builder_set_on_demand_rate_limit`") != NULL);
    b = certmagic_config_builder_new();
    CHECK_OK(certmagic_config_builder_set_cache_capacity(b, 0));
    CHECK_RC(certmagic_config_builder_build(b, &config), CERTMAGIC_RESULT_INVALID_CONFIG);
    CHECK(strstr(last_error(), "cache_capacity") != NULL);
    b = certmagic_config_builder_new();
    CHECK_OK(certmagic_config_builder_set_on_demand_ask(b, "ftp://nope"));
    CHECK_OK(certmagic_config_builder_add_on_demand_allow(b, "x.ok.test"));
    CHECK_RC(certmagic_config_builder_build(b, &config), CERTMAGIC_RESULT_INVALID_CONFIG);
    CHECK(strstr(last_error(), "on_demand_ask") != NULL);

    /* The decision's userdata is freed once nothing uses it: the abandoned obtain, stopped by
     * the shutdown, lets go of it on a library thread, so allow it a moment. */
    for (int i = 0; i < 500; i++) {
        int frees;
        pthread_mutex_lock(&g_lock);
        frees = g_frees;
        pthread_mutex_unlock(&g_lock);
        if (frees != 0) {
            break;
        }
        usleep(10000);
    }
    pthread_mutex_lock(&g_lock);
    CHECK(g_decisions >= 3);
    CHECK(g_frees == 1);
    pthread_mutex_unlock(&g_lock);
    return check_summary("test_on_demand");
}

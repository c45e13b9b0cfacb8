/* Obtaining certificates from a real ACME CA (Pebble, validation on) through the C API:
 *  A. file storage, HTTP-01 answered by this program's own HTTP listener through
 *     certmagic_manager_http_challenge_sync, events and logs received, a refusal from
 *     cert_obtaining, obtain/revoke;
 *  B. storage implemented by C callbacks (an in-memory store below), TLS-ALPN-01 answered by the
 *     library's own listener, a failing storage callback.
 * Chains are written to CM_OUT/<name>.pem for the harness to verify against Pebble's root.
 *
 * Environment: CM_CA, CM_CA_ROOTS (PEM file), CM_HTTP_PORT, CM_TLS_PORT, CM_STORAGE, CM_OUT,
 * CM_ISSUER_DIR (the CA's folder name under certificates/). */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

/* ---------- events and logs ---------- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_events[4096];
static int g_obtained_logs = 0;
static int g_userdata_frees = 0;

static uint32_t on_event(void *userdata, const char *name, const char *payload) {
    (void)userdata;
    pthread_mutex_lock(&g_lock);
    if (strlen(g_events) + strlen(name) + 64 < sizeof g_events) {
        strcat(g_events, name);
        strcat(g_events, ":");
        strncat(g_events, strstr(payload, "c-") ? strstr(payload, "c-") : "?", 20);
        strcat(g_events, ";");
    }
    pthread_mutex_unlock(&g_lock);
    if (strcmp(name, "cert_obtaining") == 0 && strstr(payload, "\"c-refused.example.test\"") != NULL) {
        return CERTMAGIC_RESULT_ABORTED;
    }
    if (strcmp(name, "cert_obtained") == 0 && strstr(payload, "\"certificate_path\"") == NULL) {
        return CERTMAGIC_RESULT_INTERNAL; /* logged by the library; the check below fails */
    }
    return CERTMAGIC_RESULT_OK;
}

static void on_log(void *userdata, uint32_t level, const char *message) {
    (void)userdata;
    if (level == CERTMAGIC_LOG_LEVEL_INFO && strstr(message, "certificate obtained") != NULL) {
        pthread_mutex_lock(&g_lock);
        g_obtained_logs++;
        pthread_mutex_unlock(&g_lock);
    }
}

static void count_free(void *userdata) {
    pthread_mutex_lock(&g_lock);
    (*(int *)userdata)++;
    pthread_mutex_unlock(&g_lock);
}

/* ---------- an HTTP-01 listener of our own ---------- */

static const certmagic_manager *g_manager = NULL;
static int g_listen_fd = -1;
static volatile int g_stop = 0;
static int g_answered = 0;

static void serve_one(int fd) {
    char req[4096];
    char path[1024];
    char host[256];
    char body[512];
    char rsp[1024];
    size_t got = 0, n = 0;
    const char *h;
    int len;
    while (got < sizeof req - 1) {
        ssize_t r = read(fd, req + got, sizeof req - 1 - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL) {
            break;
        }
    }
    req[got] = '\0';
    host[0] = '\0';
    if (sscanf(req, "GET %1023s HTTP/1.1", path) != 1) {
        return;
    }
    h = strstr(req, "\r\nHost: ");
    if (h != NULL) {
        sscanf(h + 8, "%255[^\r\n]", host);
    }
    if (certmagic_manager_http_challenge_sync(g_manager, host, path, body, sizeof body, &n) == CERTMAGIC_RESULT_OK) {
        len = snprintf(rsp, sizeof rsp,
                       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                       n, body);
        pthread_mutex_lock(&g_lock);
        g_answered++;
        pthread_mutex_unlock(&g_lock);
    } else {
        len = snprintf(rsp, sizeof rsp, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    if (write(fd, rsp, (size_t)len) < 0) {
        perror("write");
    }
}

static void *http_listener(void *arg) {
    (void)arg;
    while (!g_stop) {
        struct pollfd p;
        p.fd = g_listen_fd;
        p.events = POLLIN;
        if (poll(&p, 1, 100) > 0) {
            int fd = accept(g_listen_fd, NULL, NULL);
            if (fd >= 0) {
                serve_one(fd);
                close(fd);
            }
        }
    }
    return NULL;
}

static pthread_t start_http_listener(int port) {
    pthread_t t;
    struct sockaddr_in addr;
    int one = 1;
    g_listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(g_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(g_listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(g_listen_fd, 16) != 0) {
        perror("HTTP listener");
        exit(2);
    }
    pthread_create(&t, NULL, http_listener, NULL);
    return t;
}

/* ---------- an in-memory storage implemented in C ---------- */

#define MAX_ENTRIES 256

struct memstore {
    pthread_mutex_t mu;
    pthread_cond_t released;
    char *keys[MAX_ENTRIES];
    uint8_t *values[MAX_ENTRIES];
    size_t lens[MAX_ENTRIES];
    char *locks[MAX_ENTRIES];
    int fail_stores;
    long slow_loads_ms; /* each load sleeps this long first */
    int frees; /* times the library called userdata_free */
};

static int find(struct memstore *s, const char *key) {
    int i;
    for (i = 0; i < MAX_ENTRIES; i++) {
        if (s->keys[i] != NULL && strcmp(s->keys[i], key) == 0) {
            return i;
        }
    }
    return -1;
}

static int under(const char *key, const char *prefix) {
    size_t n = strlen(prefix);
    return strncmp(key, prefix, n) == 0 && (n == 0 || key[n] == '/');
}

static uint32_t ms_store(void *ud, const char *key, const uint8_t *value, size_t len) {
    struct memstore *s = ud;
    int i;
    pthread_mutex_lock(&s->mu);
    if (s->fail_stores) {
        pthread_mutex_unlock(&s->mu);
        return CERTMAGIC_RESULT_STORAGE;
    }
    i = find(s, key);
    if (i < 0) {
        for (i = 0; i < MAX_ENTRIES && s->keys[i] != NULL; i++) {
        }
        if (i == MAX_ENTRIES) {
            pthread_mutex_unlock(&s->mu);
            return CERTMAGIC_RESULT_STORAGE;
        }
        s->keys[i] = strdup(key);
    } else {
        free(s->values[i]);
    }
    s->values[i] = malloc(len ? len : 1);
    memcpy(s->values[i], value, len);
    s->lens[i] = len;
    pthread_mutex_unlock(&s->mu);
    return CERTMAGIC_RESULT_OK;
}

static uint32_t ms_load(void *ud, const char *key, certmagic_buffer *out) {
    struct memstore *s = ud;
    uint32_t rc = CERTMAGIC_RESULT_NOT_FOUND;
    long slow_ms;
    int i;
    pthread_mutex_lock(&s->mu);
    slow_ms = s->slow_loads_ms;
    pthread_mutex_unlock(&s->mu);
    if (slow_ms > 0) {
        usleep((useconds_t)(slow_ms * 1000));
    }
    pthread_mutex_lock(&s->mu);
    i = find(s, key);
    if (i >= 0) {
        rc = certmagic_buffer_set(out, s->values[i], s->lens[i]);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static uint32_t ms_delete(void *ud, const char *key) {
    struct memstore *s = ud;
    int i;
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < MAX_ENTRIES; i++) {
        if (s->keys[i] != NULL && (strcmp(s->keys[i], key) == 0 || under(s->keys[i], key))) {
            free(s->keys[i]);
            free(s->values[i]);
            s->keys[i] = NULL;
            s->values[i] = NULL;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return CERTMAGIC_RESULT_OK;
}

static uint32_t ms_exists(void *ud, const char *key, bool *out) {
    struct memstore *s = ud;
    int i;
    *out = false;
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < MAX_ENTRIES; i++) {
        if (s->keys[i] != NULL && (strcmp(s->keys[i], key) == 0 || under(s->keys[i], key))) {
            *out = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return CERTMAGIC_RESULT_OK;
}

static uint32_t ms_list(void *ud, const char *prefix, bool recursive, certmagic_string_list *out) {
    struct memstore *s = ud;
    int i, found = 0;
    char item[1024];
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < MAX_ENTRIES; i++) {
        if (s->keys[i] != NULL && under(s->keys[i], prefix)) {
            const char *rest = s->keys[i] + strlen(prefix) + (strlen(prefix) ? 1 : 0);
            size_t keep = strlen(prefix) + (strlen(prefix) ? 1 : 0) + (recursive ? strlen(rest) : strcspn(rest, "/"));
            snprintf(item, sizeof item, "%.*s", (int)keep, s->keys[i]);
            certmagic_string_list_push(out, item);
            found = 1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return found ? CERTMAGIC_RESULT_OK : CERTMAGIC_RESULT_NOT_FOUND;
}

static uint32_t ms_stat(void *ud, const char *key, certmagic_key_info *out) {
    struct memstore *s = ud;
    bool exists = false;
    int i;
    pthread_mutex_lock(&s->mu);
    i = find(s, key);
    if (i >= 0) {
        out->size = s->lens[i];
        out->is_terminal = true;
        out->modified_unix_ms = 1700000000000LL;
    }
    pthread_mutex_unlock(&s->mu);
    if (i >= 0) {
        return CERTMAGIC_RESULT_OK;
    }
    ms_exists(ud, key, &exists);
    if (!exists) {
        return CERTMAGIC_RESULT_NOT_FOUND;
    }
    out->size = 0;
    out->is_terminal = false;
    return CERTMAGIC_RESULT_OK;
}

static int lock_index(struct memstore *s, const char *name) {
    int i;
    for (i = 0; i < MAX_ENTRIES; i++) {
        if (s->locks[i] != NULL && strcmp(s->locks[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

static uint32_t ms_lock(void *ud, const char *name) {
    struct memstore *s = ud;
    int i;
    pthread_mutex_lock(&s->mu);
    while (lock_index(s, name) >= 0) {
        pthread_cond_wait(&s->released, &s->mu); /* callbacks may block */
    }
    for (i = 0; i < MAX_ENTRIES && s->locks[i] != NULL; i++) {
    }
    s->locks[i] = strdup(name);
    pthread_mutex_unlock(&s->mu);
    return CERTMAGIC_RESULT_OK;
}

static uint32_t ms_unlock(void *ud, const char *name) {
    struct memstore *s = ud;
    int i;
    pthread_mutex_lock(&s->mu);
    i = lock_index(s, name);
    if (i >= 0) {
        free(s->locks[i]);
        s->locks[i] = NULL;
    }
    pthread_cond_broadcast(&s->released);
    pthread_mutex_unlock(&s->mu);
    return CERTMAGIC_RESULT_OK;
}

static void ms_userdata_free(void *ud) {
    struct memstore *s = ud;
    pthread_mutex_lock(&s->mu);
    s->frees++;
    pthread_mutex_unlock(&s->mu);
}

static void memstore_free(struct memstore *s) {
    int i;
    for (i = 0; i < MAX_ENTRIES; i++) {
        free(s->keys[i]);
        free(s->values[i]);
        free(s->locks[i]);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->released);
}

/* ---------- helpers ---------- */

static certmagic_config_builder *base_builder(void) {
    certmagic_config_builder *b = certmagic_config_builder_new();
    size_t roots_len = 0;
    char *roots = read_file(need_env("CM_CA_ROOTS"), &roots_len);
    CHECK_OK(certmagic_config_builder_set_ca(b, need_env("CM_CA")));
    CHECK_OK(certmagic_config_builder_set_trusted_roots_pem(b, (const uint8_t *)roots, roots_len));
    CHECK_OK(certmagic_config_builder_set_email(b, "c-tests@certmagic-rs.test"));
    CHECK_OK(certmagic_config_builder_set_agreed(b, true));
    CHECK_OK(certmagic_config_builder_set_alt_http_port(b, (uint16_t)atoi(need_env("CM_HTTP_PORT"))));
    CHECK_OK(certmagic_config_builder_set_alt_tls_alpn_port(b, (uint16_t)atoi(need_env("CM_TLS_PORT"))));
    CHECK_OK(certmagic_config_builder_set_listen_host(b, "127.0.0.1"));
    CHECK_OK(certmagic_config_builder_set_rate_limit(b, 0, 0));
    free(roots);
    return b;
}

static void save_chain(const certmagic_manager *m, const char *name) {
    const certmagic_certificate *cert = NULL;
    certmagic_bytes pem;
    char path[1024];
    FILE *f;
    CHECK_OK(certmagic_manager_get_certificate(m, name, &cert));
    if (cert == NULL) {
        return;
    }
    CHECK(certmagic_certificate_is_managed(cert));
    CHECK_OK(certmagic_certificate_chain_pem(cert, &pem));
    snprintf(path, sizeof path, "%s/%s.pem", need_env("CM_OUT"), name);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f != NULL) {
        fwrite(pem.data, 1, pem.len, f);
        fclose(f);
    }
    certmagic_certificate_free(cert);
}

static void part_a_file_storage_and_http01(void) {
    certmagic_config_builder *b = base_builder();
    const certmagic_config *config = NULL;
    const certmagic_manager *m = NULL;
    const certmagic_certificate *cert = NULL;
    const char *names[] = {"c-http.example.test"};
    const char *refused[] = {"c-refused.example.test"};
    char path[2048];
    struct stat st;
    pthread_t listener = start_http_listener(atoi(need_env("CM_HTTP_PORT")));

    CHECK_OK(certmagic_config_builder_set_disable_tls_alpn_challenge(b, true));
    CHECK_OK(certmagic_config_builder_set_storage_path(b, need_env("CM_STORAGE")));
    CHECK_OK(certmagic_config_builder_set_event_callback(b, on_event, NULL, NULL));
    CHECK_OK(certmagic_config_builder_build(b, &config));
    CHECK_OK(certmagic_set_log_callback(on_log, &g_userdata_frees, count_free, CERTMAGIC_LOG_LEVEL_INFO));
    CHECK_OK(certmagic_manager_new(config, &m));
    g_manager = m;

    CHECK_OK(certmagic_manager_manage_sync(m, names, 1));
    pthread_mutex_lock(&g_lock);
    CHECK(g_answered >= 1); /* Pebble's validation went through our listener */
    CHECK(strstr(g_events, "cert_obtaining:c-http") != NULL);
    CHECK(strstr(g_events, "cert_obtained:c-http") != NULL);
    CHECK(g_obtained_logs >= 1);
    pthread_mutex_unlock(&g_lock);
    save_chain(m, "c-http.example.test");

    /* Another manager on the same storage serves the stored name at once, ordering nothing. */
    {
        certmagic_config_builder *b2 = base_builder();
        const certmagic_config *config2 = NULL;
        const certmagic_manager *m2 = NULL;
        const char *both[] = {"c-http.example.test", "c-never-stored.example.test"};
        size_t loaded = 99;
        CHECK_OK(certmagic_config_builder_set_storage_path(b2, need_env("CM_STORAGE")));
        CHECK_OK(certmagic_config_builder_build(b2, &config2));
        CHECK_OK(certmagic_manager_new(config2, &m2));
        certmagic_config_free(config2);
        CHECK_RC(certmagic_manager_get_certificate(m2, "c-http.example.test", &cert), CERTMAGIC_RESULT_NOT_FOUND);
        CHECK_OK(certmagic_manager_load_stored_sync(m2, both, 2, &loaded));
        CHECK(loaded == 1);
        CHECK_OK(certmagic_manager_get_certificate(m2, "c-http.example.test", &cert));
        certmagic_certificate_free(cert);
        CHECK_RC(certmagic_manager_get_certificate(m2, "c-never-stored.example.test", &cert),
                 CERTMAGIC_RESULT_NOT_FOUND);
        CHECK_OK(certmagic_manager_load_stored_sync(m2, both, 1, NULL));
        CHECK_OK(certmagic_manager_shutdown_sync(m2));
        certmagic_manager_free(m2);
    }
    snprintf(path, sizeof path, "%s/certificates/%s/c-http.example.test/c-http.example.test.crt", need_env("CM_STORAGE"),
             need_env("CM_ISSUER_DIR"));
    CHECK(stat(path, &st) == 0 && st.st_size > 0 && (st.st_mode & 0777) == 0600);

    /* An event callback refusing cert_obtaining cancels the obtain. */
    CHECK_RC(certmagic_manager_manage_sync(m, refused, 1), CERTMAGIC_RESULT_ABORTED);
    CHECK_MESSAGE("CERTMAGIC_RESULT_ABORTED");

    /* Obtain, then revoke: the files go and the name is no longer served. */
    CHECK_OK(certmagic_manager_obtain_sync(m, "c-revoke.example.test", &cert));
    CHECK(cert != NULL && certmagic_certificate_is_managed(cert));
    certmagic_certificate_free(cert);
    CHECK_OK(certmagic_manager_renew_sync(m, "c-revoke.example.test", NULL));
    CHECK_OK(certmagic_manager_revoke_sync(m, "c-revoke.example.test", 4));
    CHECK_RC(certmagic_manager_get_certificate(m, "c-revoke.example.test", &cert), CERTMAGIC_RESULT_NOT_FOUND);
    snprintf(path, sizeof path, "%s/certificates/%s/c-revoke.example.test", need_env("CM_STORAGE"), need_env("CM_ISSUER_DIR"));
    CHECK(stat(path, &st) != 0);

    CHECK_OK(certmagic_manager_shutdown_sync(m));
    certmagic_manager_free(m);
    certmagic_config_free(config);
    g_stop = 1;
    pthread_join(listener, NULL);
    close(g_listen_fd);
    CHECK_OK(certmagic_set_log_callback(NULL, NULL, NULL, CERTMAGIC_LOG_LEVEL_INFO));
    /* The log callback's userdata, once it was replaced: a library thread still inside the old
     * callback lets go of it when it returns. */
    for (int i = 0; i < 200; i++) {
        int frees;
        pthread_mutex_lock(&g_lock);
        frees = g_userdata_frees;
        pthread_mutex_unlock(&g_lock);
        if (frees != 0) {
            break;
        }
        usleep(25000);
    }
    pthread_mutex_lock(&g_lock);
    CHECK(g_userdata_frees == 1);
    pthread_mutex_unlock(&g_lock);
}

static void part_b_c_storage_and_tls_alpn01(void) {
    static struct memstore store;
    int i, found_crt = 0, found_account = 0, frees = 0;
    certmagic_storage_callbacks cbs;
    certmagic_config_builder *b = base_builder();
    const certmagic_config *config = NULL;
    const certmagic_manager *m = NULL;
    const char *names[] = {"c-mem.example.test"};
    const char *failing[] = {"c-fail.example.test"};
    char want[512];

    memset(&store, 0, sizeof store);
    pthread_mutex_init(&store.mu, NULL);
    pthread_cond_init(&store.released, NULL);
    memset(&cbs, 0, sizeof cbs);
    cbs.userdata = &store;
    cbs.store = ms_store;
    cbs.load = ms_load;
    cbs.delete_key = ms_delete;
    cbs.exists = ms_exists;
    cbs.list = ms_list;
    cbs.stat = ms_stat;
    cbs.lock = ms_lock;
    cbs.unlock = ms_unlock;
    cbs.userdata_free = ms_userdata_free;

    CHECK_OK(certmagic_config_builder_set_disable_http_challenge(b, true));
    CHECK_OK(certmagic_config_builder_set_storage_callbacks(b, &cbs));
    CHECK_OK(certmagic_config_builder_build(b, &config));
    CHECK_OK(certmagic_manager_new(config, &m));
    CHECK_OK(certmagic_manager_manage_sync(m, names, 1));
    save_chain(m, "c-mem.example.test");

    snprintf(want, sizeof want, "certificates/%s/c-mem.example.test/c-mem.example.test.crt", need_env("CM_ISSUER_DIR"));
    pthread_mutex_lock(&store.mu);
    for (i = 0; i < MAX_ENTRIES; i++) {
        if (store.keys[i] == NULL) {
            continue;
        }
        found_crt |= strcmp(store.keys[i], want) == 0;
        found_account |= strstr(store.keys[i], "/users/c-tests@certmagic-rs.test/c-tests.key") != NULL;
        CHECK(strstr(store.keys[i], "challenge_tokens") == NULL); /* cleaned up */
    }
    for (i = 0; i < MAX_ENTRIES; i++) {
        CHECK(store.locks[i] == NULL); /* released */
    }
    pthread_mutex_unlock(&store.mu);
    CHECK(found_crt);
    CHECK(found_account);

    /* A failing storage callback fails that operation with a clear message, not the process. */
    pthread_mutex_lock(&store.mu);
    store.fail_stores = 1;
    pthread_mutex_unlock(&store.mu);
    CHECK(certmagic_manager_manage_sync(m, failing, 1) != CERTMAGIC_RESULT_OK);
    CHECK_MESSAGE("storage callback `store` failed");

    /* A storage callback past its deadline fails the operation with a timeout, naming the
     * call; the callback runs on to its end on its own thread. */
    {
        certmagic_config_builder *sb = base_builder();
        const certmagic_config *slow_config = NULL;
        const certmagic_manager *slow = NULL;
        const char *slow_names[] = {"c-slow.example.test"};
        certmagic_storage_callbacks slow_cbs = cbs;
        slow_cbs.userdata_free = NULL; /* the first registration frees the store */
        pthread_mutex_lock(&store.mu);
        store.fail_stores = 0;
        store.slow_loads_ms = 1000;
        pthread_mutex_unlock(&store.mu);
        CHECK_OK(certmagic_config_builder_set_storage_callbacks(sb, &slow_cbs));
        CHECK_OK(certmagic_config_builder_set_callback_timeout_ms(sb, CERTMAGIC_CALLBACK_KIND_STORAGE, 100));
        CHECK_OK(certmagic_config_builder_build(sb, &slow_config));
        CHECK_OK(certmagic_manager_new(slow_config, &slow));
        CHECK_RC(certmagic_manager_manage_sync(slow, slow_names, 1), CERTMAGIC_RESULT_TIMEOUT);
        CHECK_MESSAGE("callback deadline");
        CHECK_OK(certmagic_manager_shutdown_sync(slow));
        certmagic_manager_free(slow);
        certmagic_config_free(slow_config);
        pthread_mutex_lock(&store.mu);
        store.slow_loads_ms = 0;
        pthread_mutex_unlock(&store.mu);
        usleep(1500000); /* the slow loads end before the store goes */
    }

    CHECK_OK(certmagic_manager_shutdown_sync(m));
    certmagic_manager_free(m);
    certmagic_config_free(config);
    /* The store's userdata is freed once, when nothing uses the callbacks any more. */
    for (i = 0; i < 200 && frees == 0; i++) {
        usleep(25000);
        pthread_mutex_lock(&store.mu);
        frees = store.frees;
        pthread_mutex_unlock(&store.mu);
    }
    usleep(100000);
    pthread_mutex_lock(&store.mu);
    CHECK(store.frees == 1);
    pthread_mutex_unlock(&store.mu);
    memstore_free(&store);
}

/* Two issuers, the first a CA that is down: the certificate comes from the second, and the
 * cert_obtained event names the one that failed. */
static int g_fallback_named = 0;

static uint32_t on_fallback_event(void *userdata, const char *name, const char *payload) {
    (void)userdata;
    if (strcmp(name, "cert_obtained") == 0 && strstr(payload, "\"failed_issuers\":[{\"issuer\":\"127.0.0.1:1-dir\"") != NULL) {
        pthread_mutex_lock(&g_lock);
        g_fallback_named = 1;
        pthread_mutex_unlock(&g_lock);
    }
    return CERTMAGIC_RESULT_OK;
}

static void part_c_issuer_fallback(void) {
    certmagic_config_builder *b = base_builder();
    const certmagic_config *config = NULL;
    const certmagic_manager *m = NULL;
    const certmagic_certificate *cert = NULL;
    const char *name = "c-fallback.example.test";
    CHECK_OK(certmagic_config_builder_add_issuer(b, "{\"type\": \"acme\", \"ca\": \"https://127.0.0.1:1/dir\"}"));
    CHECK_OK(certmagic_config_builder_add_issuer(b, "acme"));
    CHECK_OK(certmagic_config_builder_set_event_callback(b, on_fallback_event, NULL, NULL));
    CHECK_OK(certmagic_config_builder_build(b, &config));
    CHECK_OK(certmagic_manager_new(config, &m));
    CHECK_OK(certmagic_manager_obtain_sync(m, name, &cert));
    certmagic_certificate_free(cert);
    save_chain(m, name);
    CHECK_OK(certmagic_manager_shutdown_sync(m));
    certmagic_manager_free(m);
    certmagic_config_free(config);
    pthread_mutex_lock(&g_lock);
    CHECK(g_fallback_named);
    pthread_mutex_unlock(&g_lock);
}

int main(void) {
    part_a_file_storage_and_http01();
    part_b_c_storage_and_tls_alpn01();
    part_c_issuer_fallback();
    return check_summary("test_obtain");
}

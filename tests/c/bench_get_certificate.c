/* Times the C hand-over of a cached certificate: certmagic_manager_get_certificate, the DER
 * chain and key views an OpenSSL server needs, and certmagic_certificate_free. Prints figures
 * (target: under 2 µs per call); asserts nothing about time.
 *
 * Environment: CM_STORAGE, CM_UNMANAGED_CRT, CM_UNMANAGED_KEY (as test_api.c). */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "check.h"

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(void) {
    certmagic_config_builder *b = certmagic_config_builder_new();
    const certmagic_config *config = NULL;
    const certmagic_manager *m = NULL;
    size_t crt_len = 0, key_len = 0, bytes_seen = 0;
    char *crt = read_file(need_env("CM_UNMANAGED_CRT"), &crt_len);
    char *key = read_file(need_env("CM_UNMANAGED_KEY"), &key_len);
    const long rounds = 200000;
    long i;
    int round;
    double best = 1e18;

    CHECK_OK(certmagic_config_builder_set_ca(b, "https://127.0.0.1:1/dir"));
    CHECK_OK(certmagic_config_builder_set_storage_path(b, need_env("CM_STORAGE")));
    CHECK_OK(certmagic_config_builder_build(b, &config));
    CHECK_OK(certmagic_manager_new(config, &m));
    CHECK_OK(certmagic_manager_add_certificate(m, (const uint8_t *)crt, crt_len, (const uint8_t *)key, key_len, NULL));

    for (round = 0; round < 5; round++) {
        double start = now_ns(), per_call;
        for (i = 0; i < rounds; i++) {
            const certmagic_certificate *cert = NULL;
            certmagic_bytes leaf, k;
            if (certmagic_manager_get_certificate(m, "unmanaged.example.test", &cert) != CERTMAGIC_RESULT_OK) {
                fprintf(stderr, "lookup failed: %s\n", last_error());
                return 1;
            }
            certmagic_certificate_chain_der(cert, 0, &leaf);
            certmagic_certificate_key_der(cert, &k);
            bytes_seen += leaf.len + k.len;
            certmagic_certificate_free(cert);
        }
        per_call = (now_ns() - start) / (double)rounds;
        if (per_call < best) {
            best = per_call;
        }
    }
    printf("C get_certificate + DER chain/key views + free: %.0f ns per call (best of 5 x %ld; target < 2000 ns)\n",
           best, rounds);
    CHECK(bytes_seen > 0);
    CHECK_OK(certmagic_manager_shutdown_sync(m));
    certmagic_manager_free(m);
    certmagic_config_free(config);
    free(crt);
    free(key);
    return check_summary("bench_get_certificate");
}

/* An OpenSSL HTTPS server whose certificate comes from libcertmagic, obtained through
 * TLS-ALPN-01 alone, answered by this server itself:
 *  - the ClientHello callback picks the certificate by SNI from the library, or, for a CA's
 *    validation handshake (ALPN exactly "acme-tls/1"), the challenge certificate;
 *  - the ALPN callback selects "acme-tls/1" for validations and "http/1.1" otherwise;
 *  - the status callback staples the certificate's OCSP response when the library has a good
 *    one (certificates whose CA runs an OCSP responder).
 *
 * Usage: openssl_server <ca-directory-url> <ca-roots.pem> <port> <storage> <name>...
 * With `local` as the CA, the library's own certificate authority issues at once (no ACME, for
 * localhost, IPs, internal names) and its root is written to <ca-roots.pem> for clients.
 * <storage> is a folder or a database URL shared by a fleet (redis://…, postgres://…): several
 * servers on one storage obtain each certificate once, and any of them answers the CA's
 * validation. Prints READY once every name has its certificate, then serves "hello from
 * libcertmagic" over HTTPS until stdin is closed.
 *
 * Build: cc -std=c99 openssl_server.c -I include -L target/debug -lcertmagic -lssl -lcrypto -lpthread */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "certmagic.h"

static const certmagic_manager *manager;
static volatile int stopping = 0;

static const char *last_error(void) {
    static char buf[1024];
    size_t n;
    certmagic_last_error_message(buf, sizeof buf, &n);
    return buf;
}

/* Puts the chain and key of `cert` on the connection. */
static int use_certificate(SSL *ssl, const certmagic_certificate *cert) {
    certmagic_bytes der;
    const unsigned char *p;
    X509 *x509;
    EVP_PKEY *key;
    size_t i;
    if (certmagic_certificate_chain_der(cert, 0, &der) != CERTMAGIC_RESULT_OK) {
        return 0;
    }
    p = der.data;
    x509 = d2i_X509(NULL, &p, (long)der.len);
    if (x509 == NULL || SSL_use_certificate(ssl, x509) != 1) {
        X509_free(x509);
        return 0;
    }
    X509_free(x509);
    for (i = 1; i < certmagic_certificate_chain_len(cert); i++) {
        certmagic_certificate_chain_der(cert, i, &der);
        p = der.data;
        x509 = d2i_X509(NULL, &p, (long)der.len);
        if (x509 == NULL || SSL_add0_chain_cert(ssl, x509) != 1) {
            X509_free(x509);
            return 0;
        }
    }
    if (certmagic_certificate_key_der(cert, &der) != CERTMAGIC_RESULT_OK) {
        return 0;
    }
    p = der.data;
    key = d2i_AutoPrivateKey(NULL, &p, (long)der.len);
    if (key == NULL || SSL_use_PrivateKey(ssl, key) != 1) {
        EVP_PKEY_free(key);
        return 0;
    }
    EVP_PKEY_free(key);
    return 1;
}

/* Picks the certificate once the ClientHello is in, before the handshake goes on. */
static int client_hello(SSL *ssl, int *alert, void *arg) {
    const unsigned char *ext;
    size_t len, off, n = 0;
    char sni[256] = "";
    certmagic_bytes alpn[16];
    const certmagic_certificate *cert = NULL;
    certmagic_result rc;
    int ok;
    (void)arg;

    /* server_name: list length (2), type (1), name length (2), name */
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len) && len > 5 && ext[2] == 0) {
        size_t name_len = ((size_t)ext[3] << 8) | ext[4];
        if (name_len < sizeof sni && 5 + name_len <= len) {
            memcpy(sni, ext + 5, name_len);
            sni[name_len] = '\0';
        }
    }
    /* ALPN: list length (2), then (length (1), protocol) ... */
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &len) && len > 2) {
        for (off = 2; off < len && n < 16; off += 1 + ext[off]) {
            alpn[n].data = ext + off + 1;
            alpn[n].len = ext[off];
            n++;
        }
    }
    if (sni[0] == '\0') {
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    rc = certmagic_manager_tls_alpn_challenge_sync(manager, sni, alpn, n, &cert);
    if (rc == CERTMAGIC_RESULT_NOT_A_CHALLENGE) {
        rc = certmagic_manager_get_certificate(manager, sni, &cert);
    }
    if (rc != CERTMAGIC_RESULT_OK) {
        fprintf(stderr, "no certificate for %s: %s\n", sni, last_error());
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    ok = use_certificate(ssl, cert);
    certmagic_certificate_free(cert);
    if (!ok) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Staples the OCSP response of the certificate picked for this name, if the library has a good
 * one. OpenSSL calls this only when the client asked for a status. */
static int staple_ocsp(SSL *ssl, void *arg) {
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const certmagic_certificate *cert = NULL;
    certmagic_bytes staple;
    unsigned char *copy = NULL;
    (void)arg;
    if (sni == NULL || certmagic_manager_get_certificate(manager, sni, &cert) != CERTMAGIC_RESULT_OK) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    if (certmagic_certificate_ocsp_staple(cert, &staple) == CERTMAGIC_RESULT_OK && staple.len > 0) {
        /* OpenSSL frees the response with OPENSSL_free: hand it a copy of its own. */
        copy = OPENSSL_memdup(staple.data, staple.len);
    }
    if (copy != NULL && SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)staple.len) != 1) {
        OPENSSL_free(copy);
        copy = NULL;
    }
    certmagic_certificate_free(cert);
    return copy != NULL ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_NOACK;
}

/* acme-tls/1 for a validation handshake (the only protocol offered), else http/1.1. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
    static const unsigned char acme[] = "acme-tls/1";
    static const unsigned char http11[] = "http/1.1";
    unsigned int off;
    (void)ssl;
    (void)arg;
    if (inlen == 11 && in[0] == 10 && memcmp(in + 1, acme, 10) == 0) {
        *out = in + 1;
        *outlen = 10;
        return SSL_TLSEXT_ERR_OK;
    }
    for (off = 0; off < inlen; off += 1u + in[off]) {
        if (in[off] == 8 && off + 9 <= inlen && memcmp(in + off + 1, http11, 8) == 0) {
            *out = in + off + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

struct server {
    SSL_CTX *ctx;
    int fd;
};

static void *serve(void *arg) {
    struct server *s = arg;
    static const char response[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 23\r\nConnection: close\r\n\r\nhello from libcertmagic";
    while (!stopping) {
        struct pollfd p;
        int fd;
        SSL *ssl;
        p.fd = s->fd;
        p.events = POLLIN;
        if (poll(&p, 1, 100) <= 0) {
            continue;
        }
        fd = accept(s->fd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
            const unsigned char *proto;
            unsigned int proto_len;
            char buf[2048];
            SSL_get0_alpn_selected(ssl, &proto, &proto_len);
            if (!(proto_len == 10 && memcmp(proto, "acme-tls/1", 10) == 0)) {
                if (SSL_read(ssl, buf, sizeof buf) > 0) {
                    SSL_write(ssl, response, (int)strlen(response));
                }
            }
            SSL_shutdown(ssl);
        } else {
            ERR_clear_error();
        }
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

/* Writes the local CA's root, for clients to trust, to `path`. */
static int write_local_root(const char *path) {
    size_t n = 0;
    char *pem;
    FILE *f;
    int ok;
    if (certmagic_manager_local_root_pem(manager, NULL, 0, &n) != CERTMAGIC_RESULT_OK || (pem = malloc(n + 1)) == NULL) {
        return 0;
    }
    ok = certmagic_manager_local_root_pem(manager, pem, n + 1, &n) == CERTMAGIC_RESULT_OK && (f = fopen(path, "w")) != NULL;
    if (ok) {
        ok = fwrite(pem, 1, n, f) == n;
        ok = fclose(f) == 0 && ok;
    }
    free(pem);
    return ok;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv) {
    certmagic_config_builder *b;
    const certmagic_config *config = NULL;
    struct server s;
    struct sockaddr_in addr;
    pthread_t thread;
    const char **names;
    size_t names_len;
    char *roots;
    size_t roots_len = 0;
    int one = 1, port, status = 1, local;
    char c;

    if (argc < 6) {
        fprintf(stderr, "usage: %s <ca-directory-url> <ca-roots.pem> <port> <storage> <name>...\n", argv[0]);
        return 2;
    }
    /* A peer that hangs up mid-write (a CA's validation does) must not kill the server. */
    signal(SIGPIPE, SIG_IGN);
    port = atoi(argv[3]);
    names = (const char **)(argv + 5);
    names_len = (size_t)(argc - 5);
    local = strcmp(argv[1], "local") == 0;
    b = certmagic_config_builder_new();
    if (local) {
        /* The local CA alone: no challenge, no CA to reach. */
        if (certmagic_config_builder_add_issuer(b, "local") || certmagic_config_builder_set_storage_location(b, argv[4]) ||
            certmagic_config_builder_build(b, &config) || certmagic_manager_new(config, &manager) || !write_local_root(argv[2])) {
            fprintf(stderr, "setup failed: %s\n", last_error());
            return 1;
        }
    } else {
        roots = read_file(argv[2], &roots_len);
        if (roots == NULL) {
            fprintf(stderr, "cannot read %s\n", argv[2]);
            return 2;
        }
        /* TLS-ALPN-01 only, on the port this server listens on. */
        if (certmagic_config_builder_set_ca(b, argv[1]) ||
            certmagic_config_builder_set_trusted_roots_pem(b, (const uint8_t *)roots, roots_len) ||
            certmagic_config_builder_set_agreed(b, true) || certmagic_config_builder_set_disable_http_challenge(b, true) ||
            certmagic_config_builder_set_alt_tls_alpn_port(b, (uint16_t)port) ||
            certmagic_config_builder_set_storage_location(b, argv[4]) || certmagic_config_builder_build(b, &config) ||
            certmagic_manager_new(config, &manager)) {
            fprintf(stderr, "setup failed: %s\n", last_error());
            return 1;
        }
        free(roots);
    }

    s.ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_client_hello_cb(s.ctx, client_hello, NULL);
    SSL_CTX_set_alpn_select_cb(s.ctx, select_alpn, NULL);
    SSL_CTX_set_tlsext_status_cb(s.ctx, staple_ocsp);
    s.fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s.fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s.fd, 16) != 0) {
        perror("listen");
        return 1;
    }
    pthread_create(&thread, NULL, serve, &s);

    /* The server is up, so the CA's TLS-ALPN-01 validation reaches client_hello(). */
    if (certmagic_manager_manage_sync(manager, names, names_len) != CERTMAGIC_RESULT_OK) {
        fprintf(stderr, "could not obtain the certificates: %s\n", last_error());
    } else {
        printf("READY\n");
        fflush(stdout);
        while (read(0, &c, 1) > 0) {
        }
        status = 0;
    }

    stopping = 1;
    pthread_join(thread, NULL);
    close(s.fd);
    SSL_CTX_free(s.ctx);
    certmagic_manager_shutdown_sync(manager);
    certmagic_manager_free(manager);
    certmagic_config_free(config);
    return status;
}

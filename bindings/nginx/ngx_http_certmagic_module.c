/*
 * ngx_http_certmagic_module: automatic HTTPS for stock nginx through libcertmagic.
 *
 * Configuration: the `certmagic*` directives (http and server level) are grouped, per distinct
 * set of settings, into instances; each instance is one certmagic manager per worker, managing
 * the `server_name`s of the TLS servers that use it.
 *
 * Serving: each TLS server's SSL_CTX gets a certificate callback that looks up the handshake's
 * SNI in the library's in-memory cache and installs that certificate on the connection (parsed
 * once per certificate per worker), an OCSP status callback that staples what the library has,
 * and a ClientHello callback that answers TLS-ALPN-01 validations on a context of our own.
 * HTTP-01 validations are answered in the POST_READ phase, before any other handler.
 *
 * nginx's SSL module insists on an `ssl_certificate` for every TLS server and loads it into the
 * context at merge time. This module is ordered before it (see `config`): its merge gives each
 * certmagic server without certificates of its own a placeholder (a self-signed certificate
 * made in memory at configuration, never served: the certificate callback replaces it or fails
 * the handshake), so nginx builds the context as for any other server.
 *
 * On-demand TLS without patching nginx: the certificate callback cannot suspend a handshake in
 * stock nginx, so the wait happens before the handshake starts. The listening sockets of TLS
 * servers get a handler in front of nginx's: it peeks at the ClientHello (MSG_PEEK, nothing is
 * consumed), and when the SNI has no certificate yet it asks the library without blocking
 * (`certmagic_manager_certificate_for_handshake_start`); the library's ready callback wakes the
 * worker through an eventfd that is an nginx connection, and the connection is then handed to
 * nginx's own handler, whose handshake finds the certificate in the cache. The event loop never
 * blocks; only connections on on-demand servers pay the peek.
 *
 * Process model: configuration is checked in the master (so `nginx -t` names a bad directive);
 * managers are made in each worker (`init_process`), after fork, as the library requires. Every
 * worker manages every name; storage locks make one of them order and the others load.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include <pthread.h>
#include <sys/eventfd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <certmagic.h>


#define NGX_HTTP_CERTMAGIC_HTTP01      0x01
#define NGX_HTTP_CERTMAGIC_TLSALPN01   0x02
#define NGX_HTTP_CERTMAGIC_DNS01       0x04

/* Parsed certificates kept per worker; past this many, the table is emptied and refilled. */
#define NGX_HTTP_CERTMAGIC_CACHE_MAX      8192
#define NGX_HTTP_CERTMAGIC_CACHE_BUCKETS  1024

/* How long a connection may wait before its handshake for a certificate (ms). */
#define NGX_HTTP_CERTMAGIC_WAIT_MAX       200000

/* A ClientHello is one TLS record: a 5-byte header and at most 16 KiB. */
#define NGX_HTTP_CERTMAGIC_HELLO_MAX      (5 + 16384)

#define NGX_HTTP_CERTMAGIC_ACME_TLS       "acme-tls/1"


typedef struct ngx_http_certmagic_instance_s  ngx_http_certmagic_instance_t;

typedef struct {
    ngx_flag_t                       enable;
    ngx_str_t                        ca;
    ngx_str_t                        email;
    ngx_flag_t                       agree_terms;
    ngx_str_t                        storage;
    ngx_uint_t                       key_type;
    ngx_uint_t                       challenges;
    ngx_str_t                        dns_provider;
    ngx_str_t                        dns_options;
    ngx_str_t                        trusted_roots_pem;
    ngx_str_t                        on_demand_ask;
    ngx_array_t                     *on_demand_allow;    /* of ngx_str_t */
    ngx_uint_t                       on_demand_rate_events;
    ngx_msec_t                       on_demand_rate_window;
    ngx_flag_t                       on_demand;

    /* `ssl_certificate` files of the server's own: served while the library has none */
    unsigned                         own_certificates:1;

    /* where `certmagic on` was written, for errors found when the settings are combined */
    u_char                          *file;
    ngx_uint_t                       line;

    ngx_http_certmagic_instance_t   *instance;
} ngx_http_certmagic_srv_conf_t;


struct ngx_http_certmagic_instance_s {
    ngx_http_certmagic_srv_conf_t   *conf;
    ngx_array_t                      names;              /* of ngx_str_t, NUL-terminated */
    const certmagic_manager         *manager;            /* in a worker */
};


typedef struct {
    ngx_array_t                      instances;          /* of instance pointers */
    ngx_array_t                     *placeholder_cert;   /* of ngx_str_t, "data:..." */
    ngx_array_t                     *placeholder_key;
    SSL_CTX                         *challenge_ctx;
    in_port_t                        http_port;          /* 0: no plain-HTTP listener */
    in_port_t                        tls_port;
    ngx_flag_t                       on_demand;
} ngx_http_certmagic_main_conf_t;


/* A connection waiting, before its handshake, for an on-demand certificate. */
typedef struct ngx_http_certmagic_wait_s  ngx_http_certmagic_wait_t;

struct ngx_http_certmagic_wait_s {
    ngx_connection_t                *connection;
    certmagic_pending               *pending;
    ngx_queue_t                      queue;              /* every waiting connection */
    ngx_http_certmagic_wait_t       *ready_next;         /* guarded by ready_lock */
    unsigned                         ready:1;            /* guarded by ready_lock */
};


typedef struct ngx_http_certmagic_cached_s  ngx_http_certmagic_cached_t;

struct ngx_http_certmagic_cached_s {
    ngx_http_certmagic_cached_t     *next;
    const certmagic_certificate     *handle;
    X509                            *leaf;
    STACK_OF(X509)                  *chain;
    EVP_PKEY                        *key;
};


static void *ngx_http_certmagic_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_certmagic_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_certmagic_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_certmagic_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_certmagic_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_certmagic_init_process(ngx_cycle_t *cycle);
static void ngx_http_certmagic_exit_process(ngx_cycle_t *cycle);

static char *ngx_http_certmagic_enable(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certmagic_checked_str(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certmagic_storage(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certmagic_challenges(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certmagic_dns_provider(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certmagic_trusted_roots(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_certmagic_on_demand(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


typedef certmagic_result (*ngx_http_certmagic_str_setter_pt)(
    certmagic_config_builder *builder, const char *value);

typedef struct {
    ngx_http_certmagic_str_setter_pt  set;
} ngx_http_certmagic_setter_t;

static ngx_http_certmagic_setter_t  ngx_http_certmagic_set_ca = {
    certmagic_config_builder_set_ca
};

static ngx_http_certmagic_setter_t  ngx_http_certmagic_set_email = {
    certmagic_config_builder_set_email
};


static ngx_conf_enum_t  ngx_http_certmagic_key_types[] = {
    { ngx_string("p256"), CERTMAGIC_KEY_TYPE_P256 },
    { ngx_string("p384"), CERTMAGIC_KEY_TYPE_P384 },
    { ngx_string("rsa2048"), CERTMAGIC_KEY_TYPE_RSA2048 },
    { ngx_string("rsa4096"), CERTMAGIC_KEY_TYPE_RSA4096 },
    { ngx_string("ed25519"), CERTMAGIC_KEY_TYPE_ED25519 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_certmagic_commands[] = {

    { ngx_string("certmagic"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_http_certmagic_enable,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_certmagic_srv_conf_t, enable),
      NULL },

    { ngx_string("certmagic_ca"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_certmagic_checked_str,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_certmagic_srv_conf_t, ca),
      &ngx_http_certmagic_set_ca },

    { ngx_string("certmagic_email"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_certmagic_checked_str,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_certmagic_srv_conf_t, email),
      &ngx_http_certmagic_set_email },

    { ngx_string("certmagic_agree_terms"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_certmagic_srv_conf_t, agree_terms),
      NULL },

    { ngx_string("certmagic_storage"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_certmagic_storage,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_certmagic_srv_conf_t, storage),
      NULL },

    { ngx_string("certmagic_key_type"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_certmagic_srv_conf_t, key_type),
      &ngx_http_certmagic_key_types },

    { ngx_string("certmagic_challenges"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_http_certmagic_challenges,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certmagic_dns_provider"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE12,
      ngx_http_certmagic_dns_provider,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certmagic_trusted_roots"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_certmagic_trusted_roots,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certmagic_on_demand"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_http_certmagic_on_demand,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_certmagic_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_certmagic_postconfiguration,  /* postconfiguration */

    ngx_http_certmagic_create_main_conf,   /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_certmagic_create_srv_conf,    /* create server configuration */
    ngx_http_certmagic_merge_srv_conf,     /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_certmagic_module = {
    NGX_MODULE_V1,
    &ngx_http_certmagic_module_ctx,        /* module context */
    ngx_http_certmagic_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_certmagic_init_module,        /* init module */
    ngx_http_certmagic_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_certmagic_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* Worker state: one event loop thread, plus the library threads that call ready(). */
static ngx_http_certmagic_main_conf_t  *ngx_http_certmagic_worker;
static ngx_http_certmagic_cached_t     *ngx_http_certmagic_cache[
                                            NGX_HTTP_CERTMAGIC_CACHE_BUCKETS];
static ngx_uint_t                       ngx_http_certmagic_cached_n;
static ngx_queue_t                      ngx_http_certmagic_waiting;
static ngx_connection_t                *ngx_http_certmagic_wakeup;
static int                              ngx_http_certmagic_ready_fd = -1;
static pthread_mutex_t                  ngx_http_certmagic_ready_lock =
                                            PTHREAD_MUTEX_INITIALIZER;
static ngx_http_certmagic_wait_t       *ngx_http_certmagic_ready_head;
static int                              ngx_http_certmagic_ex_challenge = -1;


/* The library's last error message, for logs (a static buffer: one thread logs it at once). */
static const char *
ngx_http_certmagic_error(void)
{
    static char  buf[1024];
    size_t       n;

    if (certmagic_last_error_message(buf, sizeof(buf), &n) != CERTMAGIC_RESULT_OK) {
        return "(no message)";
    }

    return buf;
}


/* A NUL-terminated copy of a configuration string (most arguments already are; merged or
 * composed ones may not be). */
static char *
ngx_http_certmagic_cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    return (char *) p;
}


static void *
ngx_http_certmagic_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_certmagic_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_certmagic_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&mcf->instances, cf->pool, 4,
                       sizeof(ngx_http_certmagic_instance_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return mcf;
}


static void *
ngx_http_certmagic_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_certmagic_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_certmagic_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     conf->ca, email, storage, dns_provider, dns_options = { 0, NULL };
     *     conf->trusted_roots_pem, on_demand_ask = { 0, NULL };
     *     conf->file = NULL; conf->instance = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->agree_terms = NGX_CONF_UNSET;
    conf->key_type = NGX_CONF_UNSET_UINT;
    conf->challenges = NGX_CONF_UNSET_UINT;
    conf->on_demand = NGX_CONF_UNSET;
    conf->on_demand_allow = NGX_CONF_UNSET_PTR;
    conf->on_demand_rate_events = NGX_CONF_UNSET_UINT;
    conf->on_demand_rate_window = NGX_CONF_UNSET_MSEC;

    return conf;
}


/* A self-signed certificate and key made in memory, as nginx "data:" values. */
static ngx_int_t
ngx_http_certmagic_make_placeholder(ngx_conf_t *cf,
    ngx_http_certmagic_main_conf_t *mcf)
{
    BIO        *cert_bio, *key_bio;
    char       *data;
    long        len;
    X509       *x509;
    ngx_str_t  *s;
    EVP_PKEY   *pkey;
    ngx_int_t   rc;
    X509_NAME  *name;

    rc = NGX_ERROR;
    x509 = NULL;
    cert_bio = NULL;
    key_bio = NULL;

    pkey = EVP_EC_gen("P-256");
    if (pkey == NULL) {
        goto done;
    }

    x509 = X509_new();
    if (x509 == NULL
        || !X509_set_version(x509, 2)
        || !ASN1_INTEGER_set(X509_get_serialNumber(x509), 1)
        || X509_gmtime_adj(X509_getm_notBefore(x509), 0) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(x509), 60L * 60 * 24 * 365 * 10) == NULL
        || !X509_set_pubkey(x509, pkey))
    {
        goto done;
    }

    name = X509_get_subject_name(x509);

    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)
                                    "certmagic placeholder (never served)", -1, -1, 0)
        || !X509_set_issuer_name(x509, name)
        || !X509_sign(x509, pkey, EVP_sha256()))
    {
        goto done;
    }

    cert_bio = BIO_new(BIO_s_mem());
    key_bio = BIO_new(BIO_s_mem());

    if (cert_bio == NULL || key_bio == NULL
        || !PEM_write_bio_X509(cert_bio, x509)
        || !PEM_write_bio_PrivateKey(key_bio, pkey, NULL, NULL, 0, NULL, NULL))
    {
        goto done;
    }

    mcf->placeholder_cert = ngx_array_create(cf->pool, 1, sizeof(ngx_str_t));
    mcf->placeholder_key = ngx_array_create(cf->pool, 1, sizeof(ngx_str_t));
    if (mcf->placeholder_cert == NULL || mcf->placeholder_key == NULL) {
        goto done;
    }

    len = BIO_get_mem_data(cert_bio, &data);
    s = ngx_array_push(mcf->placeholder_cert);
    if (s == NULL) {
        goto done;
    }
    s->len = sizeof("data:") - 1 + len;
    s->data = ngx_pnalloc(cf->pool, s->len + 1);
    if (s->data == NULL) {
        goto done;
    }
    ngx_sprintf(s->data, "data:%*s%Z", (size_t) len, data);

    len = BIO_get_mem_data(key_bio, &data);
    s = ngx_array_push(mcf->placeholder_key);
    if (s == NULL) {
        goto done;
    }
    s->len = sizeof("data:") - 1 + len;
    s->data = ngx_pnalloc(cf->pool, s->len + 1);
    if (s->data == NULL) {
        goto done;
    }
    ngx_sprintf(s->data, "data:%*s%Z", (size_t) len, data);

    rc = NGX_OK;

done:

    if (rc != NGX_OK) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "certmagic: cannot make the placeholder certificate");
    }

    BIO_free(cert_bio);
    BIO_free(key_bio);
    X509_free(x509);
    EVP_PKEY_free(pkey);

    return rc;
}


static char *
ngx_http_certmagic_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_certmagic_srv_conf_t *prev = parent;
    ngx_http_certmagic_srv_conf_t *conf = child;

    ngx_http_ssl_srv_conf_t         *sscf;
    ngx_http_certmagic_main_conf_t  *mcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->ca, prev->ca, "");
    ngx_conf_merge_str_value(conf->email, prev->email, "");
    ngx_conf_merge_value(conf->agree_terms, prev->agree_terms, 0);
    ngx_conf_merge_str_value(conf->storage, prev->storage, "");
    ngx_conf_merge_uint_value(conf->key_type, prev->key_type, 0);
    ngx_conf_merge_uint_value(conf->challenges, prev->challenges, 0);
    ngx_conf_merge_str_value(conf->dns_provider, prev->dns_provider, "");
    ngx_conf_merge_str_value(conf->dns_options, prev->dns_options, "");
    ngx_conf_merge_str_value(conf->trusted_roots_pem, prev->trusted_roots_pem, "");
    ngx_conf_merge_value(conf->on_demand, prev->on_demand, 0);
    ngx_conf_merge_str_value(conf->on_demand_ask, prev->on_demand_ask, "");
    ngx_conf_merge_ptr_value(conf->on_demand_allow, prev->on_demand_allow, NULL);
    ngx_conf_merge_uint_value(conf->on_demand_rate_events,
                              prev->on_demand_rate_events, 0);
    ngx_conf_merge_msec_value(conf->on_demand_rate_window,
                              prev->on_demand_rate_window, 0);

    if (conf->file == NULL) {
        conf->file = prev->file;
        conf->line = prev->line;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    /*
     * This merge runs before the SSL module's (module order): a server without certificates
     * of its own gets the placeholder, so that nginx makes its SSL context as usual.
     */

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    if (sscf->certificates != NGX_CONF_UNSET_PTR && sscf->certificates != NULL) {
        conf->own_certificates = 1;
        return NGX_CONF_OK;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_certmagic_module);

    if (mcf->placeholder_cert == NULL
        && ngx_http_certmagic_make_placeholder(cf, mcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    sscf->certificates = mcf->placeholder_cert;
    sscf->certificate_keys = mcf->placeholder_key;

    return NGX_CONF_OK;
}


static char *
ngx_http_certmagic_enable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certmagic_srv_conf_t  *cmcf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    cmcf->file = cf->conf_file->file.name.data;
    cmcf->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/* Frees the builder a value was tried on; reports a refusal, with the library's message, at
 * the directive. */
static char *
ngx_http_certmagic_checked(ngx_conf_t *cf, ngx_command_t *cmd,
    certmagic_config_builder *b, certmagic_result rc)
{
    certmagic_config_builder_free(b);

    if (rc != CERTMAGIC_RESULT_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": %s", &cmd->name,
                           ngx_http_certmagic_error());
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* A string setting, checked at once by the library's own setter. */
static char *
ngx_http_certmagic_checked_str(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certmagic_setter_t  *setter = cmd->post;

    char                      *rv;
    ngx_str_t                 *value;
    certmagic_config_builder  *b;

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "is empty";
    }

    b = certmagic_config_builder_new();
    rv = ngx_http_certmagic_checked(cf, cmd, b, setter->set(b, (const char *) value[1].data));
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    cmd->post = NULL;
    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    cmd->post = setter;

    return rv;
}


/* A folder (relative to nginx's prefix; made at start, owned by the worker user) or a storage
 * URL (`redis://`, `postgres://`, ...). */
static char *
ngx_http_certmagic_storage(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certmagic_srv_conf_t  *cmcf = conf;

    ngx_str_t                 *value;
    ngx_path_t                *path;
    certmagic_config_builder  *b;

    if (cmcf->storage.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    cmcf->storage = value[1];

    if (cmcf->storage.len == 0) {
        return "is empty";
    }

    if (ngx_strlchr(cmcf->storage.data, cmcf->storage.data + cmcf->storage.len, ':')
        == NULL)
    {
        if (ngx_conf_full_name(cf->cycle, &cmcf->storage, 0) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
        if (path == NULL) {
            return NGX_CONF_ERROR;
        }

        path->name = cmcf->storage;
        path->conf_file = cf->conf_file->file.name.data;
        path->line = cf->conf_file->line;

        if (ngx_add_path(cf, &path) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    b = certmagic_config_builder_new();
    return ngx_http_certmagic_checked(cf, cmd, b,
               certmagic_config_builder_set_storage_location(b,
                   (const char *) cmcf->storage.data));
}


static char *
ngx_http_certmagic_challenges(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certmagic_srv_conf_t  *cmcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (cmcf->challenges != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    cmcf->challenges = 0;
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "http-01") == 0) {
            cmcf->challenges |= NGX_HTTP_CERTMAGIC_HTTP01;

        } else if (ngx_strcmp(value[i].data, "tls-alpn-01") == 0) {
            cmcf->challenges |= NGX_HTTP_CERTMAGIC_TLSALPN01;

        } else if (ngx_strcmp(value[i].data, "dns-01") == 0) {
            cmcf->challenges |= NGX_HTTP_CERTMAGIC_DNS01;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": unknown challenge \"%V\" "
                               "(http-01, tls-alpn-01 or dns-01)",
                               &cmd->name, &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* `certmagic_dns_provider <name | JSON object> [<solver options JSON>]` */
static char *
ngx_http_certmagic_dns_provider(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certmagic_srv_conf_t  *cmcf = conf;

    ngx_str_t                 *value;
    certmagic_config_builder  *b;

    if (cmcf->dns_provider.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    cmcf->dns_provider = value[1];

    if (cf->args->nelts > 2) {
        cmcf->dns_options = value[2];
    }

    b = certmagic_config_builder_new();
    return ngx_http_certmagic_checked(cf, cmd, b,
               certmagic_config_builder_set_dns_provider(b,
                   (const char *) cmcf->dns_provider.data,
                   cmcf->dns_options.len ? (const char *) cmcf->dns_options.data : NULL));
}


/* Read at configuration, in the master: the file may be readable by root only. */
static char *
ngx_http_certmagic_trusted_roots(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certmagic_srv_conf_t  *cmcf = conf;

    ssize_t                    n;
    ngx_str_t                 *value, name;
    ngx_file_t                 file;
    ngx_file_info_t            fi;
    certmagic_config_builder  *b;

    if (cmcf->trusted_roots_pem.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = name;
    file.log = cf->log;
    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\": cannot open \"%V\"", &cmd->name, &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 1024 * 1024)
    {
        ngx_close_file(file.fd);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": \"%V\" is not a readable file of at most 1 MiB",
                           &cmd->name, &name);
        return NGX_CONF_ERROR;
    }

    cmcf->trusted_roots_pem.len = ngx_file_size(&fi);
    cmcf->trusted_roots_pem.data = ngx_pnalloc(cf->pool, cmcf->trusted_roots_pem.len + 1);
    if (cmcf->trusted_roots_pem.data == NULL) {
        ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, cmcf->trusted_roots_pem.data, cmcf->trusted_roots_pem.len, 0);
    ngx_close_file(file.fd);

    if (n != (ssize_t) cmcf->trusted_roots_pem.len) {
        return NGX_CONF_ERROR;
    }

    cmcf->trusted_roots_pem.data[n] = '\0';

    b = certmagic_config_builder_new();
    return ngx_http_certmagic_checked(cf, cmd, b,
               certmagic_config_builder_set_trusted_roots_pem(b,
                   cmcf->trusted_roots_pem.data, cmcf->trusted_roots_pem.len));
}


/* `certmagic_on_demand ask=<url> | allow=<name>[,<name>...] [rate=<events>/<time>]` */
static char *
ngx_http_certmagic_on_demand(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certmagic_srv_conf_t  *cmcf = conf;

    u_char     *p, *last, *comma;
    ngx_int_t   events;
    ngx_str_t  *value, *name, window;
    ngx_uint_t  i;

    if (cmcf->on_demand != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    cmcf->on_demand = 1;
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "ask=", 4) == 0) {
            cmcf->on_demand_ask.data = value[i].data + 4;
            cmcf->on_demand_ask.len = value[i].len - 4;

            if (ngx_strncmp(cmcf->on_demand_ask.data, "http://", 7) != 0
                && ngx_strncmp(cmcf->on_demand_ask.data, "https://", 8) != 0)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "allow=", 6) == 0) {
            if (cmcf->on_demand_allow == NGX_CONF_UNSET_PTR) {
                cmcf->on_demand_allow = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
                if (cmcf->on_demand_allow == NULL) {
                    return NGX_CONF_ERROR;
                }
            }

            p = value[i].data + 6;
            last = value[i].data + value[i].len;

            while (p < last) {
                comma = ngx_strlchr(p, last, ',');
                if (comma == NULL) {
                    comma = last;
                }

                if (comma == p) {
                    goto invalid;
                }

                name = ngx_array_push(cmcf->on_demand_allow);
                if (name == NULL) {
                    return NGX_CONF_ERROR;
                }

                name->len = comma - p;
                name->data = (u_char *) ngx_http_certmagic_cstr(cf->pool,
                                                                &(ngx_str_t) { comma - p, p });
                if (name->data == NULL) {
                    return NGX_CONF_ERROR;
                }

                p = comma + 1;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "rate=", 5) == 0) {
            p = value[i].data + 5;
            last = value[i].data + value[i].len;
            comma = ngx_strlchr(p, last, '/');

            if (comma == NULL) {
                goto invalid;
            }

            events = ngx_atoi(p, comma - p);
            window.data = comma + 1;
            window.len = last - comma - 1;
            cmcf->on_demand_rate_window = ngx_parse_time(&window, 0);

            if (events <= 0 || cmcf->on_demand_rate_window == (ngx_msec_t) NGX_ERROR
                || cmcf->on_demand_rate_window == 0)
            {
                goto invalid;
            }

            cmcf->on_demand_rate_events = events;
            continue;
        }

        goto invalid;
    }

    if (cmcf->on_demand_ask.len == 0 && cmcf->on_demand_allow == NGX_CONF_UNSET_PTR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs ask=<url> or allow=<names>: on-demand "
                           "certificates for any name a client sends are not allowed",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": invalid parameter \"%V\" (ask=<http(s) url>, "
                       "allow=<name>[,<name>...], rate=<events>/<time>)",
                       &cmd->name, &value[i]);

    return NGX_CONF_ERROR;
}


static ngx_uint_t
ngx_http_certmagic_same_str(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && ngx_memcmp(a->data, b->data, a->len) == 0;
}


/* Servers whose settings are equal share an instance (one manager per worker). */
static ngx_uint_t
ngx_http_certmagic_same_settings(ngx_http_certmagic_srv_conf_t *a,
    ngx_http_certmagic_srv_conf_t *b)
{
    ngx_str_t   *x, *y;
    ngx_uint_t   i;

    if (a == b) {
        return 1;
    }

    if (!ngx_http_certmagic_same_str(&a->ca, &b->ca)
        || !ngx_http_certmagic_same_str(&a->email, &b->email)
        || a->agree_terms != b->agree_terms
        || !ngx_http_certmagic_same_str(&a->storage, &b->storage)
        || a->key_type != b->key_type
        || a->challenges != b->challenges
        || !ngx_http_certmagic_same_str(&a->dns_provider, &b->dns_provider)
        || !ngx_http_certmagic_same_str(&a->dns_options, &b->dns_options)
        || !ngx_http_certmagic_same_str(&a->trusted_roots_pem, &b->trusted_roots_pem)
        || a->on_demand != b->on_demand
        || !ngx_http_certmagic_same_str(&a->on_demand_ask, &b->on_demand_ask)
        || a->on_demand_rate_events != b->on_demand_rate_events
        || a->on_demand_rate_window != b->on_demand_rate_window)
    {
        return 0;
    }

    if (a->on_demand_allow == b->on_demand_allow) {
        return 1;
    }

    if (a->on_demand_allow == NULL || b->on_demand_allow == NULL
        || a->on_demand_allow->nelts != b->on_demand_allow->nelts)
    {
        return 0;
    }

    x = a->on_demand_allow->elts;
    y = b->on_demand_allow->elts;

    for (i = 0; i < a->on_demand_allow->nelts; i++) {
        if (!ngx_http_certmagic_same_str(&x[i], &y[i])) {
            return 0;
        }
    }

    return 1;
}


/* The directive behind a setting the library names (`certmagic_config_builder_set_ca`)
 * when it refuses a whole configuration. */
static const char *
ngx_http_certmagic_directive_of(const char *message, const char *otherwise)
{
    static const struct {
        const char  *setter;
        const char  *directive;
    } map[] = {
        { "_set_ca`", "certmagic_ca" },
        { "_set_email`", "certmagic_email" },
        { "_set_agreed`", "certmagic_agree_terms" },
        { "_set_storage_location`", "certmagic_storage" },
        { "_set_key_type`", "certmagic_key_type" },
        { "_set_trusted_roots_pem`", "certmagic_trusted_roots" },
        { "_set_dns_provider`", "certmagic_dns_provider" },
        { "_on_demand", "certmagic_on_demand" },
        { "_challenge", "certmagic_challenges" },
        { "_port`", "certmagic_challenges" },
    };

    ngx_uint_t  i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (ngx_strstr(message, map[i].setter) != NULL) {
            return map[i].directive;
        }
    }

    return otherwise;
}


/*
 * The library config of an instance. On failure logs which directive was refused (`cf` in
 * the master, for `nginx -t`; NULL in a worker) and returns NGX_ERROR.
 */
static ngx_int_t
ngx_http_certmagic_build(ngx_http_certmagic_instance_t *inst,
    ngx_http_certmagic_main_conf_t *mcf, ngx_log_t *log,
    const certmagic_config **out)
{
    ngx_http_certmagic_srv_conf_t  *conf = inst->conf;

    ngx_str_t                 *allow;
    ngx_uint_t                 i, challenges;
    const char                *directive;
    certmagic_result           rc;
    certmagic_config_builder  *b;

    b = certmagic_config_builder_new();

#define ngx_http_certmagic_set(name, call)                                    \
    directive = name;                                                         \
    if ((rc = (call)) != CERTMAGIC_RESULT_OK) {                               \
        goto failed;                                                          \
    }

    if (conf->ca.len) {
        ngx_http_certmagic_set("certmagic_ca",
            certmagic_config_builder_set_ca(b, (const char *) conf->ca.data));
    }

    if (conf->email.len) {
        ngx_http_certmagic_set("certmagic_email",
            certmagic_config_builder_set_email(b, (const char *) conf->email.data));
    }

    ngx_http_certmagic_set("certmagic_agree_terms",
        certmagic_config_builder_set_agreed(b, conf->agree_terms ? true : false));

    if (conf->storage.len) {
        ngx_http_certmagic_set("certmagic_storage",
            certmagic_config_builder_set_storage_location(b,
                                              (const char *) conf->storage.data));
    }

    if (conf->key_type) {
        ngx_http_certmagic_set("certmagic_key_type",
            certmagic_config_builder_set_key_type(b, (certmagic_key_type) conf->key_type));
    }

    if (conf->trusted_roots_pem.len) {
        ngx_http_certmagic_set("certmagic_trusted_roots",
            certmagic_config_builder_set_trusted_roots_pem(b,
                conf->trusted_roots_pem.data, conf->trusted_roots_pem.len));
    }

    challenges = conf->challenges;
    if (challenges == 0) {
        challenges = conf->dns_provider.len
                     ? NGX_HTTP_CERTMAGIC_DNS01
                     : NGX_HTTP_CERTMAGIC_HTTP01|NGX_HTTP_CERTMAGIC_TLSALPN01;
    }

    if (challenges & NGX_HTTP_CERTMAGIC_DNS01) {
        ngx_http_certmagic_set("certmagic_dns_provider",
            certmagic_config_builder_set_dns_provider(b,
                (const char *) conf->dns_provider.data,
                conf->dns_options.len ? (const char *) conf->dns_options.data : NULL));

    } else {
        /* the challenges nginx answers are on the ports it listens on: the library never
         * listens itself (a port nginx holds is taken as answered there) */
        ngx_http_certmagic_set("certmagic_challenges",
            certmagic_config_builder_set_disable_http_challenge(b,
                !(challenges & NGX_HTTP_CERTMAGIC_HTTP01) || mcf->http_port == 0));
        ngx_http_certmagic_set("certmagic_challenges",
            certmagic_config_builder_set_disable_tls_alpn_challenge(b,
                !(challenges & NGX_HTTP_CERTMAGIC_TLSALPN01) || mcf->tls_port == 0));

        if (mcf->http_port) {
            ngx_http_certmagic_set("certmagic_challenges",
                certmagic_config_builder_set_alt_http_port(b, mcf->http_port));
        }

        if (mcf->tls_port) {
            ngx_http_certmagic_set("certmagic_challenges",
                certmagic_config_builder_set_alt_tls_alpn_port(b, mcf->tls_port));
        }
    }

    if (conf->on_demand) {
        if (conf->on_demand_ask.len) {
            ngx_http_certmagic_set("certmagic_on_demand",
                certmagic_config_builder_set_on_demand_ask(b,
                    (const char *) conf->on_demand_ask.data));
        }

        if (conf->on_demand_allow) {
            allow = conf->on_demand_allow->elts;
            for (i = 0; i < conf->on_demand_allow->nelts; i++) {
                ngx_http_certmagic_set("certmagic_on_demand",
                    certmagic_config_builder_add_on_demand_allow(b,
                        (const char *) allow[i].data));
            }
        }

        if (conf->on_demand_rate_events) {
            ngx_http_certmagic_set("certmagic_on_demand",
                certmagic_config_builder_set_on_demand_rate_limit(b,
                    (uint32_t) conf->on_demand_rate_events,
                    conf->on_demand_rate_window));
        }
    }

#undef ngx_http_certmagic_set

    directive = "certmagic";
    rc = certmagic_config_builder_build(b, out);
    b = NULL;

    if (rc == CERTMAGIC_RESULT_OK) {
        return NGX_OK;
    }

failed:

    certmagic_config_builder_free(b);

    if (rc == CERTMAGIC_RESULT_INVALID_CONFIG) {
        directive = ngx_http_certmagic_directive_of(ngx_http_certmagic_error(), directive);
    }

    ngx_log_error(NGX_LOG_EMERG, log, 0,
                  "certmagic: \"%s\" refused for the servers of \"certmagic on\" "
                  "in %s:%ui: %s", directive, conf->file ? conf->file : (u_char *) "?",
                  conf->line, ngx_http_certmagic_error());

    return NGX_ERROR;
}


/* Adds the certificate names of one TLS server (exact and wildcard; regular expressions and
 * catch-all names cannot have certificates). */
static ngx_int_t
ngx_http_certmagic_add_names(ngx_conf_t *cf, ngx_http_certmagic_instance_t *inst,
    ngx_http_core_srv_conf_t *cscf)
{
    ngx_str_t                      *name, s;
    ngx_uint_t                      i, j, n;
    ngx_http_server_name_t         *sn;
    ngx_http_certmagic_srv_conf_t  *conf = inst->conf;

    sn = cscf->server_names.elts;

    for (i = 0; i < cscf->server_names.nelts; i++) {

#if (NGX_PCRE)
        if (sn[i].regex) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "certmagic: no certificate for the regular expression "
                          "server name \"%V\"", &sn[i].name);
            continue;
        }
#endif

        s = sn[i].name;

        if (s.len == 0 || (s.len == 1 && s.data[0] == '_')) {
            continue;
        }

        /* ".example.com" is nginx's "example.com and *.example.com" */
        for (n = 0; n < 2; n++) {

            if (n == 1) {
                if (sn[i].name.data[0] != '.') {
                    break;
                }

                s.len = sn[i].name.len + 1;
                s.data = ngx_pnalloc(cf->pool, s.len);
                if (s.data == NULL) {
                    return NGX_ERROR;
                }

                s.data[0] = '*';
                ngx_memcpy(s.data + 1, sn[i].name.data, sn[i].name.len);

            } else if (s.data[0] == '.') {
                s.data++;
                s.len--;
            }

            if (s.data[0] == '*'
                && !((conf->challenges == 0 && conf->dns_provider.len)
                     || (conf->challenges & NGX_HTTP_CERTMAGIC_DNS01)))
            {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "certmagic: the wildcard server name \"%V\" in %s:%ui "
                              "needs DNS-01 (\"certmagic_dns_provider\")",
                              &s, cscf->file_name, cscf->line);
                return NGX_ERROR;
            }

            if (s.data[s.len - 1] == '*') {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "certmagic: no certificate can be had for the server "
                              "name \"%V\" in %s:%ui", &s, cscf->file_name, cscf->line);
                return NGX_ERROR;
            }

            name = inst->names.elts;
            for (j = 0; j < inst->names.nelts; j++) {
                if (ngx_http_certmagic_same_str(&name[j], &s)) {
                    break;
                }
            }

            if (j < inst->names.nelts) {
                continue;
            }

            name = ngx_array_push(&inst->names);
            if (name == NULL) {
                return NGX_ERROR;
            }

            name->len = s.len;
            name->data = (u_char *) ngx_http_certmagic_cstr(cf->pool, &s);
            if (name->data == NULL) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static int ngx_http_certmagic_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg);
static int ngx_http_certmagic_status_cb(ngx_ssl_conn_t *ssl_conn, void *arg);
static int ngx_http_certmagic_client_hello_cb(ngx_ssl_conn_t *ssl_conn, int *al,
    void *arg);
static ngx_int_t ngx_http_certmagic_http01_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_certmagic_make_challenge_ctx(ngx_conf_t *cf,
    ngx_http_certmagic_main_conf_t *mcf);


static ngx_int_t
ngx_http_certmagic_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                       p, a, s, i;
    ngx_http_handler_pt             *h;
    ngx_http_conf_port_t            *port;
    ngx_http_conf_addr_t            *addr;
    ngx_http_ssl_srv_conf_t         *sscf;
    ngx_http_core_srv_conf_t       **cscfp;
    const certmagic_config          *config;
    ngx_http_core_main_conf_t       *cmcf;
    ngx_http_certmagic_instance_t  **inst, *in;
    ngx_http_certmagic_srv_conf_t   *conf;
    ngx_http_certmagic_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_certmagic_module);
    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    if (cmcf->ports == NULL) {
        return NGX_OK;
    }

    /* the ports the CA reaches us on: nginx holds them, so the library never listens */
    port = cmcf->ports->elts;
    for (p = 0; p < cmcf->ports->nelts; p++) {
        addr = port[p].addrs.elts;
        for (a = 0; a < port[p].addrs.nelts; a++) {
            if (addr[a].opt.ssl) {
                if (mcf->tls_port == 0 || port[p].port == 443) {
                    mcf->tls_port = port[p].port;
                }

            } else if (mcf->http_port == 0 || port[p].port == 80) {
                mcf->http_port = port[p].port;
            }
        }
    }

    /* every TLS server with certmagic on: its instance, its names, its context's callbacks */
    for (p = 0; p < cmcf->ports->nelts; p++) {
        addr = port[p].addrs.elts;
        for (a = 0; a < port[p].addrs.nelts; a++) {

            if (!addr[a].opt.ssl) {
                continue;
            }

            cscfp = addr[a].servers.elts;
            for (s = 0; s < addr[a].servers.nelts; s++) {

                conf = cscfp[s]->ctx->srv_conf[ngx_http_certmagic_module.ctx_index];
                sscf = cscfp[s]->ctx->srv_conf[ngx_http_ssl_module.ctx_index];

                if (sscf->ssl.ctx != NULL) {
                    /* any TLS server's context may be the one a validation arrives on */
                    SSL_CTX_set_client_hello_cb(sscf->ssl.ctx,
                                                ngx_http_certmagic_client_hello_cb, mcf);
                }

                if (!conf->enable) {
                    continue;  /* (without certificates nginx says so itself) */
                }

                if (conf->instance == NULL) {
                    inst = mcf->instances.elts;
                    for (i = 0; i < mcf->instances.nelts; i++) {
                        if (ngx_http_certmagic_same_settings(inst[i]->conf, conf)) {
                            break;
                        }
                    }

                    if (i < mcf->instances.nelts) {
                        conf->instance = inst[i];

                    } else {
                        in = ngx_pcalloc(cf->pool, sizeof(ngx_http_certmagic_instance_t));
                        if (in == NULL
                            || ngx_array_init(&in->names, cf->pool, 4, sizeof(ngx_str_t))
                               != NGX_OK)
                        {
                            return NGX_ERROR;
                        }

                        in->conf = conf;
                        inst = ngx_array_push(&mcf->instances);
                        if (inst == NULL) {
                            return NGX_ERROR;
                        }

                        *inst = in;
                        conf->instance = in;
                    }

                    if (ngx_http_certmagic_add_names(cf, conf->instance, cscfp[s])
                        != NGX_OK)
                    {
                        return NGX_ERROR;
                    }

                    if (conf->on_demand) {
                        mcf->on_demand = 1;
                    }
                }

                if (sscf->ssl.ctx != NULL) {
                    SSL_CTX_set_cert_cb(sscf->ssl.ctx, ngx_http_certmagic_cert_cb, conf);
                    SSL_CTX_set_tlsext_status_cb(sscf->ssl.ctx,
                                                 ngx_http_certmagic_status_cb);
                    SSL_CTX_set_tlsext_status_arg(sscf->ssl.ctx, conf);
                }
            }
        }
    }

    if (mcf->instances.nelts == 0) {
        return NGX_OK;
    }

    /* every instance's settings checked now, so that `nginx -t` reports them */
    inst = mcf->instances.elts;
    for (i = 0; i < mcf->instances.nelts; i++) {
        if (ngx_http_certmagic_build(inst[i], mcf, cf->log, &config) != NGX_OK) {
            return NGX_ERROR;
        }

        certmagic_config_free(config);

        if (inst[i]->names.nelts == 0 && !inst[i]->conf->on_demand) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "certmagic: the servers of \"certmagic on\" in %s:%ui have no "
                          "server_name to get a certificate for",
                          inst[i]->conf->file, inst[i]->conf->line);
        }
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_certmagic_http01_handler;

    return ngx_http_certmagic_make_challenge_ctx(cf, mcf);
}


/* ---- serving ---------------------------------------------------------------------------- */


static void
ngx_http_certmagic_cached_free(ngx_http_certmagic_cached_t *c)
{
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    EVP_PKEY_free(c->key);
    certmagic_certificate_free(c->handle);
    ngx_free(c);
}


static void
ngx_http_certmagic_cache_clear(void)
{
    ngx_uint_t                    i;
    ngx_http_certmagic_cached_t  *c, *next;

    for (i = 0; i < NGX_HTTP_CERTMAGIC_CACHE_BUCKETS; i++) {
        for (c = ngx_http_certmagic_cache[i]; c; c = next) {
            next = c->next;
            ngx_http_certmagic_cached_free(c);
        }

        ngx_http_certmagic_cache[i] = NULL;
    }

    ngx_http_certmagic_cached_n = 0;
}


/* OpenSSL objects for a certificate handle, made once per handle (a renewal or a new staple
 * is a new handle). Takes over the caller's reference to `handle` either way. */
static ngx_http_certmagic_cached_t *
ngx_http_certmagic_parsed(const certmagic_certificate *handle, ngx_log_t *log)
{
    BIO                          *bio;
    size_t                        i, n;
    ngx_uint_t                    bucket;
    const u_char                 *der;
    certmagic_bytes               bytes;
    ngx_http_certmagic_cached_t  *c;

    bucket = ((uintptr_t) handle >> 4) % NGX_HTTP_CERTMAGIC_CACHE_BUCKETS;

    for (c = ngx_http_certmagic_cache[bucket]; c; c = c->next) {
        if (c->handle == handle) {
            certmagic_certificate_free(handle);
            return c;
        }
    }

    if (ngx_http_certmagic_cached_n >= NGX_HTTP_CERTMAGIC_CACHE_MAX) {
        ngx_http_certmagic_cache_clear();
    }

    c = ngx_alloc(sizeof(ngx_http_certmagic_cached_t), log);
    if (c == NULL) {
        certmagic_certificate_free(handle);
        return NULL;
    }

    ngx_memzero(c, sizeof(ngx_http_certmagic_cached_t));
    c->handle = handle;

    n = certmagic_certificate_chain_len(handle);
    c->chain = sk_X509_new_null();
    if (n == 0 || c->chain == NULL) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        X509  *x509;

        if (certmagic_certificate_chain_der(handle, i, &bytes) != CERTMAGIC_RESULT_OK) {
            goto failed;
        }

        der = bytes.data;
        x509 = d2i_X509(NULL, &der, (long) bytes.len);
        if (x509 == NULL) {
            goto failed;
        }

        if (i == 0) {
            c->leaf = x509;

        } else if (!sk_X509_push(c->chain, x509)) {
            X509_free(x509);
            goto failed;
        }
    }

    if (certmagic_certificate_key_pem(handle, &bytes) != CERTMAGIC_RESULT_OK) {
        goto failed;
    }

    bio = BIO_new_mem_buf(bytes.data, (int) bytes.len);
    if (bio == NULL) {
        goto failed;
    }

    c->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (c->key == NULL) {
        goto failed;
    }

    c->next = ngx_http_certmagic_cache[bucket];
    ngx_http_certmagic_cache[bucket] = c;
    ngx_http_certmagic_cached_n++;

    return c;

failed:

    ngx_ssl_error(NGX_LOG_ERR, log, 0, "certmagic: cannot use the certificate");
    ngx_http_certmagic_cached_free(c);

    return NULL;
}


static int
ngx_http_certmagic_use(ngx_ssl_conn_t *ssl_conn, ngx_http_certmagic_cached_t *c)
{
    /* OpenSSL keeps a certificate per key type: the placeholder (P-256) would stay beside an
     * Ed25519 or RSA certificate, and could be chosen */
    SSL_certs_clear(ssl_conn);

    return SSL_use_certificate(ssl_conn, c->leaf) == 1
           && SSL_use_PrivateKey(ssl_conn, c->key) == 1
           && SSL_set1_chain(ssl_conn, c->chain) == 1;
}


/* The name a handshake is for: its SNI, or the server's first name for clients without one. */
static const char *
ngx_http_certmagic_handshake_name(ngx_ssl_conn_t *ssl_conn,
    ngx_http_certmagic_instance_t *inst)
{
    const char  *name;
    ngx_str_t   *names;

    name = SSL_get_servername(ssl_conn, TLSEXT_NAMETYPE_host_name);

    if (name == NULL && inst->names.nelts) {
        names = inst->names.elts;
        name = (const char *) names[0].data;
    }

    return name;
}


static int
ngx_http_certmagic_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg)
{
    ngx_http_certmagic_srv_conf_t  *conf = arg;
    ngx_http_certmagic_instance_t  *inst = conf->instance;

    const char                   *name;
    ngx_connection_t             *c;
    certmagic_result              rc;
    const certmagic_certificate  *handle;
    ngx_http_certmagic_cached_t  *cached;

    if (SSL_get_ex_data(ssl_conn, ngx_http_certmagic_ex_challenge) != NULL) {
        return 1;  /* a TLS-ALPN-01 validation: its certificate is in place */
    }

    c = ngx_ssl_get_connection(ssl_conn);
    name = ngx_http_certmagic_handshake_name(ssl_conn, inst);

    rc = (inst->manager == NULL || name == NULL)
         ? CERTMAGIC_RESULT_NOT_FOUND
         : certmagic_manager_get_certificate(inst->manager, name, &handle);

    if (rc != CERTMAGIC_RESULT_OK) {
        if (conf->own_certificates) {
            return 1;  /* the server's ssl_certificate, already in place */
        }

        ngx_log_error(NGX_LOG_INFO, c->log, 0, "certmagic: no certificate for \"%s\" (yet)",
                      name ? name : "(a handshake without SNI)");
        return 0;
    }

    cached = ngx_http_certmagic_parsed(handle, c->log);

    if (cached == NULL || !ngx_http_certmagic_use(ssl_conn, cached)) {
        return 0;
    }

    return 1;
}


/* Staples the library's OCSP response (if any) for the certificate being served. */
static int
ngx_http_certmagic_status_cb(ngx_ssl_conn_t *ssl_conn, void *arg)
{
    ngx_http_certmagic_srv_conf_t  *conf = arg;
    ngx_http_certmagic_instance_t  *inst = conf->instance;

    u_char                       *copy;
    const char                   *name;
    certmagic_bytes               staple;
    const certmagic_certificate  *handle;

    if (inst->manager == NULL
        || SSL_get_ex_data(ssl_conn, ngx_http_certmagic_ex_challenge) != NULL)
    {
        return SSL_TLSEXT_ERR_NOACK;
    }

    name = ngx_http_certmagic_handshake_name(ssl_conn, inst);

    if (name == NULL
        || certmagic_manager_get_certificate(inst->manager, name, &handle)
           != CERTMAGIC_RESULT_OK)
    {
        return SSL_TLSEXT_ERR_NOACK;
    }

    copy = NULL;

    if (certmagic_certificate_ocsp_staple(handle, &staple) == CERTMAGIC_RESULT_OK
        && staple.len > 0)
    {
        /* OpenSSL frees the response itself */
        copy = OPENSSL_memdup(staple.data, staple.len);
        if (copy != NULL
            && SSL_set_tlsext_status_ocsp_resp(ssl_conn, copy, (long) staple.len) != 1)
        {
            OPENSSL_free(copy);
            copy = NULL;
        }
    }

    certmagic_certificate_free(handle);

    return copy ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_NOACK;
}


/* ---- TLS-ALPN-01 ---------------------------------------------------------------------- */


static int
ngx_http_certmagic_challenge_servername(ngx_ssl_conn_t *ssl_conn, int *ad, void *arg)
{
    return SSL_TLSEXT_ERR_OK;  /* stay on the challenge context */
}


static int
ngx_http_certmagic_challenge_alpn(ngx_ssl_conn_t *ssl_conn, const unsigned char **out,
    unsigned char *outlen, const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char  acme[] = "\x0a" NGX_HTTP_CERTMAGIC_ACME_TLS;

    if (SSL_select_next_proto((unsigned char **) out, outlen, acme, sizeof(acme) - 1,
                              in, inlen)
        != OPENSSL_NPN_NEGOTIATED)
    {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }

    return SSL_TLSEXT_ERR_OK;
}


static void
ngx_http_certmagic_challenge_ctx_cleanup(void *data)
{
    SSL_CTX_free(data);
}


static ngx_int_t
ngx_http_certmagic_make_challenge_ctx(ngx_conf_t *cf, ngx_http_certmagic_main_conf_t *mcf)
{
    ngx_pool_cleanup_t  *cln;

    if (ngx_http_certmagic_ex_challenge == -1) {
        ngx_http_certmagic_ex_challenge = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
        if (ngx_http_certmagic_ex_challenge == -1) {
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0, "SSL_get_ex_new_index() failed");
            return NGX_ERROR;
        }
    }

    mcf->challenge_ctx = SSL_CTX_new(TLS_server_method());
    if (mcf->challenge_ctx == NULL) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0, "SSL_CTX_new() failed");
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        SSL_CTX_free(mcf->challenge_ctx);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_certmagic_challenge_ctx_cleanup;
    cln->data = mcf->challenge_ctx;

    SSL_CTX_set_min_proto_version(mcf->challenge_ctx, TLS1_2_VERSION);
    SSL_CTX_set_tlsext_servername_callback(mcf->challenge_ctx,
                                           ngx_http_certmagic_challenge_servername);
    SSL_CTX_set_alpn_select_cb(mcf->challenge_ctx, ngx_http_certmagic_challenge_alpn, NULL);

    return NGX_OK;
}


/* The SNI and the ALPN protocols of a ClientHello, from OpenSSL's view of it. */
static void
ngx_http_certmagic_hello_sni(const unsigned char *ext, size_t len, char *name,
    size_t name_size)
{
    size_t  n;

    name[0] = '\0';

    /* server_name_list: u16 length, then type 0 (host_name), u16 length, the name */
    if (len < 5 || ext[2] != 0) {
        return;
    }

    n = (ext[3] << 8) | ext[4];

    if (n == 0 || n + 5 > len || n >= name_size) {
        return;
    }

    ngx_memcpy(name, ext + 5, n);
    name[n] = '\0';

    if (ngx_strlen(name) != n) {
        name[0] = '\0';  /* a NUL inside the name */
    }
}


static ngx_uint_t
ngx_http_certmagic_only_acme_tls(const unsigned char *ext, size_t len)
{
    /* protocol_name_list: u16 length, then exactly one entry, "acme-tls/1" */
    return len == 2 + 1 + sizeof(NGX_HTTP_CERTMAGIC_ACME_TLS) - 1
           && (size_t) ((ext[0] << 8) | ext[1]) == len - 2
           && ext[2] == sizeof(NGX_HTTP_CERTMAGIC_ACME_TLS) - 1
           && ngx_memcmp(ext + 3, NGX_HTTP_CERTMAGIC_ACME_TLS,
                         sizeof(NGX_HTTP_CERTMAGIC_ACME_TLS) - 1) == 0;
}


static int
ngx_http_certmagic_client_hello_cb(ngx_ssl_conn_t *ssl_conn, int *al, void *arg)
{
    ngx_http_certmagic_main_conf_t *mcf = arg;

    char                            name[256];
    size_t                          len;
    ngx_uint_t                      i;
    certmagic_bytes                 alpn;
    ngx_connection_t               *c;
    const unsigned char            *ext;
    const certmagic_certificate    *handle;
    ngx_http_certmagic_cached_t    *cached;
    ngx_http_certmagic_instance_t **inst;

    if (mcf->challenge_ctx == NULL
        || !SSL_client_hello_get0_ext(ssl_conn,
                                   TLSEXT_TYPE_application_layer_protocol_negotiation,
                                   &ext, &len)
        || !ngx_http_certmagic_only_acme_tls(ext, len))
    {
        return SSL_CLIENT_HELLO_SUCCESS;
    }

    c = ngx_ssl_get_connection(ssl_conn);

    name[0] = '\0';
    if (SSL_client_hello_get0_ext(ssl_conn, TLSEXT_TYPE_server_name, &ext, &len)) {
        ngx_http_certmagic_hello_sni(ext, len, name, sizeof(name));
    }

    alpn.data = (const uint8_t *) NGX_HTTP_CERTMAGIC_ACME_TLS;
    alpn.len = sizeof(NGX_HTTP_CERTMAGIC_ACME_TLS) - 1;

    inst = mcf->instances.elts;
    for (i = 0; i < mcf->instances.nelts; i++) {

        if (inst[i]->manager == NULL || name[0] == '\0') {
            continue;
        }

        /* may read storage: only validation handshakes get here */
        if (certmagic_manager_tls_alpn_challenge_sync(inst[i]->manager, name, &alpn, 1,
                                                      &handle)
            != CERTMAGIC_RESULT_OK)
        {
            continue;
        }

        cached = ngx_http_certmagic_parsed(handle, c->log);

        if (cached == NULL
            || SSL_set_SSL_CTX(ssl_conn, mcf->challenge_ctx) == NULL
            || !ngx_http_certmagic_use(ssl_conn, cached)
            || !SSL_set_ex_data(ssl_conn, ngx_http_certmagic_ex_challenge, cached))
        {
            break;
        }

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "certmagic: answering a TLS-ALPN-01 validation for \"%s\"", name);

        return SSL_CLIENT_HELLO_SUCCESS;
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "certmagic: no TLS-ALPN-01 challenge for \"%s\"", name);

    *al = SSL_AD_NO_APPLICATION_PROTOCOL;

    return SSL_CLIENT_HELLO_ERROR;
}


/* ---- HTTP-01 -------------------------------------------------------------------------- */


static ngx_int_t
ngx_http_certmagic_http01_handler(ngx_http_request_t *r)
{
    static const char  prefix[] = "/.well-known/acme-challenge/";

    char                             host[256], path[512], body[1024];
    size_t                           n;
    ngx_buf_t                       *b;
    ngx_int_t                        rc;
    ngx_uint_t                       i;
    ngx_chain_t                      out;
    ngx_http_certmagic_instance_t  **inst;

    if (r->uri.len <= sizeof(prefix) - 1 || r->uri.len >= sizeof(path)
        || ngx_strncmp(r->uri.data, prefix, sizeof(prefix) - 1) != 0
        || r->headers_in.server.len == 0 || r->headers_in.server.len >= sizeof(host)
        || ngx_http_certmagic_worker == NULL)
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(host, r->headers_in.server.data, r->headers_in.server.len);
    host[r->headers_in.server.len] = '\0';
    ngx_memcpy(path, r->uri.data, r->uri.len);
    path[r->uri.len] = '\0';

    inst = ngx_http_certmagic_worker->instances.elts;
    for (i = 0; i < ngx_http_certmagic_worker->instances.nelts; i++) {

        if (inst[i]->manager == NULL) {
            continue;
        }

        /* may read storage (another instance or worker may have placed the challenge) */
        if (certmagic_manager_http_challenge_sync(inst[i]->manager, host, path, body,
                                                  sizeof(body), &n)
            == CERTMAGIC_RESULT_OK)
        {
            break;
        }
    }

    if (i == ngx_http_certmagic_worker->instances.nelts) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "certmagic: answering an HTTP-01 validation for \"%s\"", host);

    /* a phase handler: the response is finalized here (NGX_OK would run the next phase) */
    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        ngx_http_finalize_request(r, NGX_HTTP_NOT_ALLOWED);
        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = n;
    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc != NGX_ERROR && rc <= NGX_OK && !r->header_only) {
        b = ngx_create_temp_buf(r->pool, n);
        if (b == NULL) {
            rc = NGX_ERROR;

        } else {
            b->last = ngx_cpymem(b->last, body, n);
            b->last_buf = (r == r->main) ? 1 : 0;
            b->last_in_chain = 1;

            out.buf = b;
            out.next = NULL;

            rc = ngx_http_output_filter(r, &out);
        }
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* ---- on-demand: waiting before the handshake ------------------------------------------ */


static void ngx_http_certmagic_peek_handler(ngx_event_t *rev);
static ngx_int_t ngx_http_certmagic_init_wakeup(ngx_cycle_t *cycle);
static void ngx_http_certmagic_start(ngx_cycle_t *cycle,
    ngx_http_certmagic_main_conf_t *mcf);
static void ngx_http_certmagic_stop(void);


/* The on-demand instance of a connection's address (its default server's). */
static ngx_http_certmagic_instance_t *
ngx_http_certmagic_on_demand_instance(ngx_connection_t *c)
{
    ngx_uint_t                      i;
    ngx_http_port_t                *port;
    ngx_http_in_addr_t             *addr;
#if (NGX_HAVE_INET6)
    ngx_http_in6_addr_t            *addr6;
#endif
    ngx_http_core_srv_conf_t       *cscf;
    ngx_http_certmagic_srv_conf_t  *conf;

    port = c->listening->servers;

    for (i = 0; i < port->naddrs; i++) {

#if (NGX_HAVE_INET6)
        if (c->listening->sockaddr->sa_family == AF_INET6) {
            addr6 = port->addrs;
            cscf = addr6[i].conf.default_server;
        } else
#endif
        {
            addr = port->addrs;
            cscf = addr[i].conf.default_server;
        }

        conf = cscf->ctx->srv_conf[ngx_http_certmagic_module.ctx_index];

        if (conf->enable && conf->on_demand && conf->instance
            && conf->instance->manager)
        {
            return conf->instance;
        }
    }

    return NULL;
}


/* The instance managing `name` (exactly, or by the wildcard one label up). */
static ngx_http_certmagic_instance_t *
ngx_http_certmagic_managing_instance(const char *name)
{
    size_t                           len;
    ngx_str_t                       *names;
    ngx_uint_t                       i, j;
    const char                      *base;
    ngx_http_certmagic_instance_t  **inst;

    len = ngx_strlen(name);
    base = ngx_strchr(name, '.');

    inst = ngx_http_certmagic_worker->instances.elts;
    for (i = 0; i < ngx_http_certmagic_worker->instances.nelts; i++) {

        if (inst[i]->manager == NULL) {
            continue;
        }

        names = inst[i]->names.elts;
        for (j = 0; j < inst[i]->names.nelts; j++) {

            if (names[j].len == len
                && ngx_strncasecmp(names[j].data, (u_char *) name, len) == 0)
            {
                return inst[i];
            }

            if (base != NULL && names[j].data[0] == '*'
                && names[j].len - 1 == ngx_strlen(base)
                && ngx_strncasecmp(names[j].data + 1, (u_char *) base, names[j].len - 1) == 0)
            {
                return inst[i];
            }
        }
    }

    return NULL;
}


/*
 * What a peeked ClientHello says: NGX_AGAIN (incomplete), NGX_DECLINED (not one we can read:
 * let nginx handle the connection), or NGX_OK with the SNI and whether ALPN is only
 * acme-tls/1.
 */
static ngx_int_t
ngx_http_certmagic_parse_hello(const u_char *p, size_t n, size_t cap, char *name,
    size_t name_size, ngx_uint_t *acme)
{
    size_t         record, hello, len, ext_len, type;
    const u_char  *q, *end;

    name[0] = '\0';
    *acme = 0;

    if (n < 5) {
        return NGX_AGAIN;
    }

    if (p[0] != 0x16) {
        return NGX_DECLINED;  /* not a TLS handshake record */
    }

    record = (p[3] << 8) | p[4];

    if (5 + record > cap) {
        return NGX_DECLINED;
    }

    if (n < 5 + record) {
        return NGX_AGAIN;
    }

    q = p + 5;
    end = q + record;

    if (end - q < 4 || q[0] != 0x01) {
        return NGX_DECLINED;
    }

    hello = (q[1] << 16) | (q[2] << 8) | q[3];
    q += 4;

    if (hello > (size_t) (end - q)) {
        return NGX_DECLINED;  /* a ClientHello over several records */
    }

    end = q + hello;

#define ngx_http_certmagic_skip(bytes)                                       \
    if ((size_t) (end - q) < (bytes)) { return NGX_DECLINED; }                \
    q += (bytes)

    ngx_http_certmagic_skip(2 + 32);                 /* version, random */
    if (q >= end) { return NGX_DECLINED; }
    len = q[0];
    ngx_http_certmagic_skip(1 + len);                /* session id */
    if (end - q < 2) { return NGX_DECLINED; }
    len = (q[0] << 8) | q[1];
    ngx_http_certmagic_skip(2 + len);                /* cipher suites */
    if (q >= end) { return NGX_DECLINED; }
    len = q[0];
    ngx_http_certmagic_skip(1 + len);                /* compression methods */

    if (q == end) {
        return NGX_OK;  /* no extensions */
    }

    if (end - q < 2) { return NGX_DECLINED; }
    ext_len = (q[0] << 8) | q[1];
    ngx_http_certmagic_skip(2);

    if (ext_len != (size_t) (end - q)) {
        return NGX_DECLINED;
    }

    while (end - q >= 4) {
        type = (q[0] << 8) | q[1];
        len = (q[2] << 8) | q[3];
        ngx_http_certmagic_skip(4);

        if (len > (size_t) (end - q)) {
            return NGX_DECLINED;
        }

        if (type == TLSEXT_TYPE_server_name) {
            ngx_http_certmagic_hello_sni(q, len, name, name_size);

        } else if (type == TLSEXT_TYPE_application_layer_protocol_negotiation) {
            *acme = ngx_http_certmagic_only_acme_tls(q, len);
        }

        q += len;
    }

#undef ngx_http_certmagic_skip

    return NGX_OK;
}


static void
ngx_http_certmagic_resume(ngx_connection_t *c)
{
    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    c->data = NULL;
    c->read->ready = 1;  /* the ClientHello is in the socket: it was only peeked at */

    ngx_http_init_connection(c);
}


static void
ngx_http_certmagic_wait_done(ngx_http_certmagic_wait_t *w)
{
    certmagic_pending_free(w->pending);  /* the ready callback no longer runs after this */
    w->pending = NULL;

    pthread_mutex_lock(&ngx_http_certmagic_ready_lock);

    if (w->ready) {
        ngx_http_certmagic_wait_t  **pp;

        for (pp = &ngx_http_certmagic_ready_head; *pp; pp = &(*pp)->ready_next) {
            if (*pp == w) {
                *pp = w->ready_next;
                break;
            }
        }

        w->ready = 0;
    }

    pthread_mutex_unlock(&ngx_http_certmagic_ready_lock);

    ngx_queue_remove(&w->queue);
}


/* On a library thread: queue the connection and wake the worker. */
static void
ngx_http_certmagic_ready(void *userdata)
{
    ngx_http_certmagic_wait_t *w = userdata;

    uint64_t  one = 1;

    pthread_mutex_lock(&ngx_http_certmagic_ready_lock);

    if (!w->ready) {
        w->ready = 1;
        w->ready_next = ngx_http_certmagic_ready_head;
        ngx_http_certmagic_ready_head = w;
    }

    pthread_mutex_unlock(&ngx_http_certmagic_ready_lock);

    if (write(ngx_http_certmagic_ready_fd, &one, sizeof(one)) != sizeof(one)) {
        /* the counter is non-zero already (EAGAIN only at its maximum): the worker wakes */
    }
}


/* In the worker: finish the connections whose certificates are known. */
static void
ngx_http_certmagic_wakeup_handler(ngx_event_t *rev)
{
    uint64_t                      count;
    certmagic_result              rc;
    ngx_connection_t             *c;
    const certmagic_certificate  *cert;
    ngx_http_certmagic_wait_t    *w, *next;

    while (read(ngx_http_certmagic_ready_fd, &count, sizeof(count)) > 0) {
        /* drained */
    }

    pthread_mutex_lock(&ngx_http_certmagic_ready_lock);
    w = ngx_http_certmagic_ready_head;
    ngx_http_certmagic_ready_head = NULL;

    for (next = w; next; next = next->ready_next) {
        next->ready = 0;
    }

    pthread_mutex_unlock(&ngx_http_certmagic_ready_lock);

    for ( /* void */ ; w; w = next) {
        next = w->ready_next;
        c = w->connection;

        rc = certmagic_pending_poll(w->pending, &cert);

        if (rc == CERTMAGIC_RESULT_PENDING) {
            continue;
        }

        if (rc == CERTMAGIC_RESULT_OK) {
            certmagic_certificate_free(cert);

        } else {
            /* the handshake then fails in the certificate callback, with an alert */
            ngx_log_error(NGX_LOG_INFO, c->log, 0, "certmagic: %s (%s)",
                          ngx_http_certmagic_error(), certmagic_result_str(rc));
        }

        ngx_http_certmagic_wait_done(w);
        ngx_http_certmagic_resume(c);
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, rev->log, 0, "certmagic: cannot watch the wakeup fd");
    }
}


static void
ngx_http_certmagic_peek_handler(ngx_event_t *rev)
{
    static u_char  buf[NGX_HTTP_CERTMAGIC_HELLO_MAX];

    char                            name[256];
    ssize_t                         n;
    ngx_err_t                       err;
    ngx_int_t                       rc;
    ngx_uint_t                      i, acme;
    certmagic_bytes                 alpn[1];
    ngx_connection_t               *c;
    certmagic_result                crc;
    const certmagic_certificate    *cert;
    ngx_http_certmagic_wait_t      *w;
    ngx_http_certmagic_instance_t  *od, **inst;

    c = rev->data;
    w = c->data;

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      w->pending ? "certmagic: timed out waiting for a certificate"
                                 : "client timed out before sending a ClientHello");
        if (w->pending) {
            ngx_http_certmagic_wait_done(w);
        }
        ngx_http_close_connection(c);
        return;
    }

    if (w->pending) {
        return;  /* waiting for the certificate, not for the client */
    }

    n = recv(c->fd, buf, sizeof(buf), MSG_PEEK);

    if (n == -1) {
        err = ngx_socket_errno;

        if (err == NGX_EAGAIN) {
            rev->ready = 0;
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_close_connection(c);
            }
            return;
        }

        ngx_connection_error(c, err, "recv() failed");
        ngx_http_close_connection(c);
        return;
    }

    if (n == 0) {
        ngx_http_close_connection(c);
        return;
    }

    rc = ngx_http_certmagic_parse_hello(buf, n, sizeof(buf), name, sizeof(name), &acme);

    if (rc == NGX_AGAIN) {
        rev->ready = 0;
        if (ngx_handle_read_event(rev, 0) != NGX_OK) {
            ngx_http_close_connection(c);
        }
        return;
    }

    if (rc != NGX_OK || acme || name[0] == '\0') {
        ngx_http_certmagic_resume(c);
        return;
    }

    /* a name some instance already has is served at once */
    inst = ngx_http_certmagic_worker->instances.elts;
    for (i = 0; i < ngx_http_certmagic_worker->instances.nelts; i++) {
        if (inst[i]->manager
            && certmagic_manager_get_certificate(inst[i]->manager, name, &cert)
               == CERTMAGIC_RESULT_OK)
        {
            certmagic_certificate_free(cert);
            ngx_http_certmagic_resume(c);
            return;
        }
    }

    /*
     * A managed name not in this worker's cache (another worker obtained it, or the cache
     * evicted it) comes from storage; an unknown one may be had on demand.
     */
    od = ngx_http_certmagic_managing_instance(name);

    if (od == NULL) {
        od = ngx_http_certmagic_on_demand_instance(c);
    }

    if (od == NULL) {
        ngx_http_certmagic_resume(c);
        return;
    }

    alpn[0].data = (const uint8_t *) "";
    alpn[0].len = 0;

    ngx_queue_insert_tail(&ngx_http_certmagic_waiting, &w->queue);

    crc = certmagic_manager_certificate_for_handshake_start(od->manager, name, alpn, 0,
                                                            ngx_http_certmagic_ready, w,
                                                            &w->pending);
    if (crc != CERTMAGIC_RESULT_OK) {
        ngx_queue_remove(&w->queue);
        w->pending = NULL;
        ngx_log_error(NGX_LOG_ERR, c->log, 0, "certmagic: %s", ngx_http_certmagic_error());
        ngx_http_certmagic_resume(c);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "certmagic: waiting for the certificate for \"%s\"", name);

    /* the library's own deadline for an on-demand certificate (180 s) comes first */
    ngx_add_timer(rev, NGX_HTTP_CERTMAGIC_WAIT_MAX);

    /* the client may say no more until it has our answer: only the timer runs now */
    if (rev->active && ngx_del_event(rev, NGX_READ_EVENT, 0) != NGX_OK) {
        ngx_http_certmagic_wait_done(w);
        ngx_http_close_connection(c);
    }
}


/* The client_header_timeout of the listener's (first) default server. */
static ngx_msec_t
ngx_http_certmagic_header_timeout(ngx_connection_t *c)
{
    ngx_http_port_t           *port;
    ngx_http_core_srv_conf_t  *cscf;

    port = c->listening->servers;

#if (NGX_HAVE_INET6)
    if (c->listening->sockaddr->sa_family == AF_INET6) {
        cscf = ((ngx_http_in6_addr_t *) port->addrs)[0].conf.default_server;
    } else
#endif
    {
        cscf = ((ngx_http_in_addr_t *) port->addrs)[0].conf.default_server;
    }

    return cscf->client_header_timeout;
}


/* In front of ngx_http_init_connection on the TLS listeners of a certmagic http block. */
static void
ngx_http_certmagic_init_connection(ngx_connection_t *c)
{
    ngx_event_t                *rev;
    ngx_http_certmagic_wait_t  *w;

    if (ngx_http_certmagic_worker == NULL || ngx_http_certmagic_wakeup == NULL) {
        ngx_http_init_connection(c);
        return;
    }

    w = ngx_pcalloc(c->pool, sizeof(ngx_http_certmagic_wait_t));
    if (w == NULL) {
        ngx_http_close_connection(c);
        return;
    }

    w->connection = c;
    c->data = w;

    rev = c->read;
    rev->handler = ngx_http_certmagic_peek_handler;
    c->write->handler = ngx_http_empty_handler;

    /* the client's time for a ClientHello, as nginx gives it for a handshake */
    ngx_add_timer(rev, ngx_http_certmagic_header_timeout(c));

    if (rev->ready) {
        ngx_http_certmagic_peek_handler(rev);
        return;
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_close_connection(c);
    }
}


static ngx_uint_t
ngx_http_certmagic_port_has_tls(ngx_http_port_t *port, int family)
{
    ngx_uint_t            i;
    ngx_http_in_addr_t   *addr;
#if (NGX_HAVE_INET6)
    ngx_http_in6_addr_t  *addr6;
#endif

    for (i = 0; i < port->naddrs; i++) {
#if (NGX_HAVE_INET6)
        if (family == AF_INET6) {
            addr6 = port->addrs;
            if (addr6[i].conf.ssl) {
                return 1;
            }
            continue;
        }
#endif
        addr = port->addrs;
        if (addr[i].conf.ssl) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_certmagic_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_listening_t                 *ls;
    ngx_http_certmagic_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_certmagic_module);

    /*
     * A reload with `master_process off` makes no new worker: the one process stops the
     * managers of the configuration it leaves (whose memory goes with the old cycle) and
     * starts those of the new one here.
     */
    if (ngx_process == NGX_PROCESS_SINGLE && ngx_http_certmagic_worker != NULL) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "certmagic: reloading without a master process: managers restarted");
        ngx_http_certmagic_stop();

        if (mcf != NULL && mcf->instances.nelts) {
            if (ngx_http_certmagic_wakeup == NULL
                && ngx_http_certmagic_init_wakeup(cycle) != NGX_OK)
            {
                return NGX_ERROR;
            }

            ngx_http_certmagic_start(cycle, mcf);
        }
    }

    if (mcf == NULL || mcf->instances.nelts == 0) {
        return NGX_OK;
    }

    /* the TLS listeners: a plain-HTTP one never needs a certificate */
    ls = cycle->listening.elts;
    for (i = 0; i < cycle->listening.nelts; i++) {
        if (ls[i].handler == ngx_http_init_connection
            && ngx_http_certmagic_port_has_tls(ls[i].servers, ls[i].sockaddr->sa_family))
        {
            ls[i].handler = ngx_http_certmagic_init_connection;
        }
    }

    return NGX_OK;
}


/* ---- worker lifetime ------------------------------------------------------------------ */


static void
ngx_http_certmagic_log(void *userdata, uint32_t level, const char *message)
{
    ngx_uint_t  nlevel;

    switch (level) {
    case CERTMAGIC_LOG_LEVEL_ERROR:
        nlevel = NGX_LOG_ERR;
        break;
    case CERTMAGIC_LOG_LEVEL_WARN:
        nlevel = NGX_LOG_WARN;
        break;
    case CERTMAGIC_LOG_LEVEL_INFO:
        nlevel = NGX_LOG_NOTICE;
        break;
    default:
        nlevel = NGX_LOG_DEBUG;
        break;
    }

    ngx_log_error(nlevel, ngx_cycle->log, 0, "certmagic: %s", message);
}


static ngx_int_t
ngx_http_certmagic_init_wakeup(ngx_cycle_t *cycle)
{
    ngx_connection_t  *c;

    ngx_queue_init(&ngx_http_certmagic_waiting);

    ngx_http_certmagic_ready_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ngx_http_certmagic_ready_fd == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno, "certmagic: eventfd() failed");
        return NGX_ERROR;
    }

    c = ngx_get_connection(ngx_http_certmagic_ready_fd, cycle->log);
    if (c == NULL) {
        close(ngx_http_certmagic_ready_fd);
        ngx_http_certmagic_ready_fd = -1;
        return NGX_ERROR;
    }

    c->read->handler = ngx_http_certmagic_wakeup_handler;
    c->read->log = cycle->log;
    c->write->log = cycle->log;
    c->log = cycle->log;
    ngx_http_certmagic_wakeup = c;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* The managers of a cycle's instances, made in the process that uses them. */
static void
ngx_http_certmagic_start(ngx_cycle_t *cycle, ngx_http_certmagic_main_conf_t *mcf)
{
    size_t                           loaded;
    ngx_uint_t                       i, j;
    ngx_str_t                       *names;
    const char                     **list;
    certmagic_result                 rc;
    const certmagic_config          *config;
    ngx_http_certmagic_instance_t  **inst;

    ngx_http_certmagic_worker = mcf;

    inst = mcf->instances.elts;
    for (i = 0; i < mcf->instances.nelts; i++) {

        if (ngx_http_certmagic_build(inst[i], mcf, cycle->log, &config) != NGX_OK) {
            continue;
        }

        rc = certmagic_manager_new(config, &inst[i]->manager);
        certmagic_config_free(config);

        if (rc != CERTMAGIC_RESULT_OK) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, 0, "certmagic: %s",
                          ngx_http_certmagic_error());
            inst[i]->manager = NULL;
            continue;
        }

        if (inst[i]->names.nelts == 0) {
            continue;
        }

        list = ngx_alloc(inst[i]->names.nelts * sizeof(char *), cycle->log);
        if (list == NULL) {
            continue;
        }

        names = inst[i]->names.elts;
        for (j = 0; j < inst[i]->names.nelts; j++) {
            list[j] = (const char *) names[j].data;
        }

        /*
         * What storage holds is served from this worker's first connection (after a reload the
         * old workers stop accepting at once); what it lacks is obtained in the background.
         */
        if (certmagic_manager_load_stored_sync(inst[i]->manager, list, inst[i]->names.nelts,
                                               &loaded)
            != CERTMAGIC_RESULT_OK)
        {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0, "certmagic: loading from storage: %s",
                          ngx_http_certmagic_error());
        }

        if (certmagic_manager_manage_background(inst[i]->manager, list,
                                                inst[i]->names.nelts)
            != CERTMAGIC_RESULT_OK)
        {
            ngx_log_error(NGX_LOG_ERR, cycle->log, 0, "certmagic: %s",
                          ngx_http_certmagic_error());
        }

        ngx_free(list);
    }
}


/* Closes the connections still waiting for a certificate and stops the managers. */
static void
ngx_http_certmagic_stop(void)
{
    ngx_uint_t                       i;
    ngx_queue_t                     *q;
    ngx_connection_t                *c;
    ngx_http_certmagic_wait_t       *w;
    ngx_http_certmagic_instance_t  **inst;
    ngx_http_certmagic_main_conf_t  *mcf;

    mcf = ngx_http_certmagic_worker;

    if (mcf == NULL) {
        return;
    }

    if (ngx_http_certmagic_wakeup) {
        while (!ngx_queue_empty(&ngx_http_certmagic_waiting)) {
            q = ngx_queue_head(&ngx_http_certmagic_waiting);
            w = ngx_queue_data(q, ngx_http_certmagic_wait_t, queue);
            c = w->connection;
            ngx_http_certmagic_wait_done(w);
            ngx_http_close_connection(c);
        }
    }

    inst = mcf->instances.elts;
    for (i = 0; i < mcf->instances.nelts; i++) {
        if (inst[i]->manager) {
            (void) certmagic_manager_shutdown_sync(inst[i]->manager);
            certmagic_manager_free(inst[i]->manager);
            inst[i]->manager = NULL;
        }
    }

    ngx_http_certmagic_cache_clear();
    ngx_http_certmagic_worker = NULL;
}


static ngx_int_t
ngx_http_certmagic_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       max;
    ngx_http_certmagic_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_certmagic_module);

    if (mcf == NULL || mcf->instances.nelts == 0) {
        return NGX_OK;
    }

    max = cycle->log->log_level >= NGX_LOG_DEBUG ? CERTMAGIC_LOG_LEVEL_DEBUG
          : cycle->log->log_level >= NGX_LOG_NOTICE ? CERTMAGIC_LOG_LEVEL_INFO
          : CERTMAGIC_LOG_LEVEL_WARN;

    if (certmagic_set_log_callback(ngx_http_certmagic_log, NULL, NULL, (uint32_t) max)
        != CERTMAGIC_RESULT_OK)
    {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "certmagic: library logs not forwarded: %s",
                      ngx_http_certmagic_error());
    }

    if (ngx_http_certmagic_init_wakeup(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_certmagic_start(cycle, mcf);

    return NGX_OK;
}


static void
ngx_http_certmagic_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_certmagic_stop();

    if (ngx_http_certmagic_wakeup) {
        ngx_close_connection(ngx_http_certmagic_wakeup);
        ngx_http_certmagic_wakeup = NULL;
        ngx_http_certmagic_ready_fd = -1;
    }

    (void) certmagic_set_log_callback(NULL, NULL, NULL, 0);
}

// OpenSSL 3 as Weir uses it. Only WeirIO imports this module.
#ifndef WEIR_COPENSSL_SHIM_H
#define WEIR_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <openssl/core_names.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

// Macros and callbacks Swift cannot call or write directly.

/// Empties the thread's error queue before a TLS I/O call (SSL_get_error needs it empty). Clearing
/// an empty queue costs about 400 instructions (it resets all 16 slots); SSL_get_error decides by
/// ERR_peek_error, so a queue whose peek is 0 is as good as empty.
static inline void weir_err_clear(void) { if (ERR_peek_error() != 0) ERR_clear_error(); }

static inline int weir_ssl_ctx_set_min_proto(SSL_CTX *ctx, int v) { return (int)SSL_CTX_set_min_proto_version(ctx, v); }
static inline int weir_ssl_ctx_set_max_proto(SSL_CTX *ctx, int v) { return (int)SSL_CTX_set_max_proto_version(ctx, v); }
static inline int weir_tls1_2_version(void) { return TLS1_2_VERSION; }
static inline int weir_tls1_3_version(void) { return TLS1_3_VERSION; }
static inline void weir_ssl_ctx_set_modes(SSL_CTX *ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* Read whatever the socket has in one system call, not a record header and then its body. */
    SSL_CTX_set_read_ahead(ctx, 1);
}
/// Restricts the key exchange groups to `list` (colon-separated, most preferred first). Returns 1 on success.
static inline int weir_ssl_ctx_set_groups(SSL_CTX *ctx, const char *list) { return (int)SSL_CTX_set1_groups_list(ctx, list); }
/// The server's cipher order wins (every cipher on the list is an AEAD with forward secrecy,
/// strongest first); auditors such as testssl.sh flag client-chosen order.
static inline void weir_ssl_ctx_server_cipher_order(SSL_CTX *ctx) { SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE); }
/// A client's end of stream without close_notify ends its input like a close_notify does (an HTTP
/// request is self-delimiting, so nothing can be cut short unseen) instead of failing the session:
/// a client that half-closes after its request still gets the answer, and the rest of the last one.
static inline void weir_ssl_ctx_server_eof_ends_input(SSL_CTX *ctx) { SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF); }
static inline void weir_ssl_ctx_server_session_cache(SSL_CTX *ctx) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 20000);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"weir", 4);
}
static inline void weir_ssl_ctx_set_sni_cb(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *), void *arg) {
    SSL_CTX_set_tlsext_servername_callback(ctx, cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}
static inline int weir_ssl_set_sni(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
static inline int weir_ssl_err_want_read(void) { return SSL_ERROR_WANT_READ; }
static inline int weir_ssl_err_want_write(void) { return SSL_ERROR_WANT_WRITE; }
static inline int weir_ssl_err_zero_return(void) { return SSL_ERROR_ZERO_RETURN; }
static inline int weir_ssl_err_syscall(void) { return SSL_ERROR_SYSCALL; }
static inline int weir_tlsext_err_ok(void) { return SSL_TLSEXT_ERR_OK; }
static inline int weir_tlsext_err_noack(void) { return SSL_TLSEXT_ERR_NOACK; }
static inline int weir_tlsext_err_alert_fatal(void) { return SSL_TLSEXT_ERR_ALERT_FATAL; }
static inline int weir_tlsext_nametype_host(void) { return TLSEXT_NAMETYPE_host_name; }

/// Chooses http/1.1 when the client offers it (ALPN); otherwise no ALPN (the client may still speak HTTP/1.1).
static inline int weir_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                   const unsigned char *in, unsigned int inlen, void *arg) {
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, http11, 9, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}
static inline void weir_ssl_ctx_alpn_http11(SSL_CTX *ctx) { SSL_CTX_set_alpn_select_cb(ctx, weir_alpn_select, NULL); }
/// ALPN offering h2 and http/1.1 (the server's preference order: h2 first).
static inline int weir_alpn_select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                      const unsigned char *in, unsigned int inlen, void *arg) {
    static const unsigned char protos[] = "\x02h2\x08http/1.1";
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, protos, 12, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}
static inline void weir_ssl_ctx_alpn_h2(SSL_CTX *ctx) { SSL_CTX_set_alpn_select_cb(ctx, weir_alpn_select_h2, NULL); }
/// 1 when ALPN selected h2 on this connection.
static inline int weir_ssl_alpn_is_h2(const SSL *ssl) {
    const unsigned char *p = NULL; unsigned int n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    return n == 2 && p[0] == 'h' && p[1] == '2';
}
static inline int weir_ssl_set_alpn_http11(SSL *ssl) {
    static const unsigned char http11[] = "\x08http/1.1";
    return SSL_set_alpn_protos(ssl, http11, 9);
}

/// DNS names of the context's certificate (subjectAltName, else the common name), separated by
/// newlines, into `out`. Returns the number of names.
static inline int weir_ssl_ctx_cert_names(SSL_CTX *ctx, char *out, size_t outlen) {
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    size_t used = 0; int count = 0;
    out[0] = 0;
    if (!cert) return 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (names) {
        for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
            const GENERAL_NAME *n = sk_GENERAL_NAME_value(names, i);
            if (n->type != GEN_DNS) continue;
            const char *text = (const char *)ASN1_STRING_get0_data(n->d.dNSName);
            size_t len = (size_t)ASN1_STRING_length(n->d.dNSName);
            if (used + len + 2 > outlen) break;
            memcpy(out + used, text, len); used += len; out[used++] = '\n'; out[used] = 0; count++;
        }
        GENERAL_NAMES_free(names);
    }
    if (count == 0) {
        int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out, (int)outlen - 1);
        if (len > 0) { out[len] = 0; count = 1; }
    }
    return count;
}

/// The notAfter time of the context's certificate in Unix seconds, or -1 when it has none or the
/// time cannot be read (for the certificate expiry metric).
static inline long long weir_ssl_ctx_cert_not_after(SSL_CTX *ctx) {
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    if (!cert) return -1;
    struct tm t;
    memset(&t, 0, sizeof(t));
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &t) != 1) return -1;
    return (long long)timegm(&t);
}

/// The OpenSSL error queue of this thread as one line (and cleared).
static inline void weir_ssl_errors(char *out, size_t outlen) {
    unsigned long e; size_t used = 0; out[0] = 0;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        size_t len = strlen(buf);
        if (used + len + 3 >= outlen) continue;
        if (used) { out[used++] = ';'; out[used++] = ' '; }
        memcpy(out + used, buf, len); used += len; out[used] = 0;
    }
}

// Session tickets with rotating keys: a ring of two keys (current, previous) shared by every
// worker thread; the control thread rotates it. Tickets sealed with the previous key are still
// accepted (and renewed), and so is every TLS 1.3 ticket.
typedef struct weir_ticket_ring {
    pthread_mutex_t lock;
    unsigned char name[2][16];
    unsigned char aes[2][32];
    unsigned char hmac[2][32];
    int current;
} weir_ticket_ring;

static inline weir_ticket_ring *weir_ticket_ring_new(void) {
    weir_ticket_ring *r = OPENSSL_zalloc(sizeof(*r));
    if (!r) return NULL;
    pthread_mutex_init(&r->lock, NULL);
    for (int i = 0; i < 2; i++) {
        RAND_bytes(r->name[i], 16); RAND_bytes(r->aes[i], 32); RAND_bytes(r->hmac[i], 32);
    }
    return r;
}

/// Frees a ring no context uses any more (its listener's contexts and every SSL made from them are gone).
static inline void weir_ticket_ring_free(weir_ticket_ring *r) {
    pthread_mutex_destroy(&r->lock);
    OPENSSL_clear_free(r, sizeof(*r));
}

static inline void weir_ticket_ring_rotate(weir_ticket_ring *r) {
    pthread_mutex_lock(&r->lock);
    int next = 1 - r->current;
    RAND_bytes(r->name[next], 16); RAND_bytes(r->aes[next], 32); RAND_bytes(r->hmac[next], 32);
    r->current = next;
    pthread_mutex_unlock(&r->lock);
}

static int weir_ticket_ring_index = -1;

static inline int weir_ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv,
                                 EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc) {
    weir_ticket_ring *r = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), weir_ticket_ring_index);
    if (!r) return -1;
    OSSL_PARAM params[3];
    pthread_mutex_lock(&r->lock);
    int k = r->current, result;
    if (enc) {
        memcpy(key_name, r->name[k], 16);
        if (RAND_bytes(iv, 16) <= 0) { pthread_mutex_unlock(&r->lock); return -1; }
        result = 1;
    } else {
        /* TLS 1.3 clients use a ticket once (RFC 8446 §C.4): a resumption must hand out a new one,
           or the client's next connection is a full handshake (OpenSSL sends none for result 1). */
        if (memcmp(key_name, r->name[k], 16) == 0) result = SSL_version(s) >= TLS1_3_VERSION ? 2 : 1;
        else if (memcmp(key_name, r->name[1 - k], 16) == 0) { k = 1 - k; result = 2; }   /* valid, renew */
        else { pthread_mutex_unlock(&r->lock); return 0; }
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, r->hmac[k], 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    int ok = EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, r->aes[k], iv, enc) && EVP_MAC_CTX_set_params(hctx, params);
    pthread_mutex_unlock(&r->lock);
    return ok ? result : -1;
}

static inline int weir_ssl_ctx_use_ticket_ring(SSL_CTX *ctx, weir_ticket_ring *r) {
    if (weir_ticket_ring_index < 0) weir_ticket_ring_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (!SSL_CTX_set_ex_data(ctx, weir_ticket_ring_index, r)) return 0;
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, weir_ticket_cb) == 1;
}

// OCSP stapling: the DER response given to the context is sent to clients that ask for it.
static int weir_ocsp_index = -1;
typedef struct weir_ocsp { unsigned char *der; long len; } weir_ocsp;

static inline int weir_ocsp_cb(SSL *s, void *arg) {
    weir_ocsp *o = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), weir_ocsp_index);
    if (!o || o->len <= 0) return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_memdup(o->der, (size_t)o->len);
    if (!copy) return SSL_TLSEXT_ERR_NOACK;
    SSL_set_tlsext_status_ocsp_resp(s, copy, o->len);
    return SSL_TLSEXT_ERR_OK;
}

static inline int weir_ssl_ctx_staple(SSL_CTX *ctx, const unsigned char *der, long len) {
    if (weir_ocsp_index < 0) weir_ocsp_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    weir_ocsp *o = OPENSSL_zalloc(sizeof(*o));
    if (!o) return 0;
    o->der = OPENSSL_memdup(der, (size_t)len); o->len = len;
    if (!SSL_CTX_set_ex_data(ctx, weir_ocsp_index, o)) return 0;
    SSL_CTX_set_tlsext_status_cb(ctx, weir_ocsp_cb);
    return 1;
}

/// Host name (or IP address) verification for a client connection.
static inline int weir_ssl_expect_host(SSL *ssl, const char *name, int is_ip) {
    X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
    if (is_ip) return X509_VERIFY_PARAM_set1_ip_asc(p, name);
    X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return X509_VERIFY_PARAM_set1_host(p, name, 0);
}

static inline int weir_ssl_session_reused(SSL *ssl) { return (int)SSL_session_reused(ssl); }

#endif

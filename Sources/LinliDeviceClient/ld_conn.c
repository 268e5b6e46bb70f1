/* TLS connection, frames and the challenge-response proof. */
#define _POSIX_C_SOURCE 200809L
#include "ld_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void set_error(char *error, size_t len, const char *what) {
    unsigned long e = ERR_get_error();
    if (e) {
        char ssl[200];
        ERR_error_string_n(e, ssl, sizeof ssl);
        snprintf(error, len, "%s: %s", what, ssl);
    } else {
        snprintf(error, len, "%s: %s", what, strerror(errno));
    }
}

int ld_conn_open(ld_conn *conn, const char *host, int port, const char *ca_path, char *error, size_t error_len) {
    memset(conn, 0, sizeof *conn);
    conn->fd = -1;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, service, &hints, &found);
    if (rc != 0) {
        snprintf(error, error_len, "resolving %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *a = found; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) { conn->fd = fd; break; }
        close(fd);
    }
    freeaddrinfo(found);
    if (conn->fd < 0) { set_error(error, error_len, "connecting"); return -1; }
    int one = 1;
    setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* No read or write waits forever: a stalled gateway fails the connection. */
    struct timeval tv = {30, 0};
    setsockopt(conn->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(conn->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    conn->ctx = SSL_CTX_new(TLS_client_method());
    if (!conn->ctx) { set_error(error, error_len, "TLS context"); ld_conn_close(conn); return -1; }
    SSL_CTX_set_min_proto_version(conn->ctx, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(conn->ctx, ca_path, NULL) != 1) {
        set_error(error, error_len, "loading the CA file");
        ld_conn_close(conn);
        return -1;
    }
    SSL_CTX_set_verify(conn->ctx, SSL_VERIFY_PEER, NULL);
    conn->ssl = SSL_new(conn->ctx);
    if (!conn->ssl) { set_error(error, error_len, "TLS session"); ld_conn_close(conn); return -1; }
    /* The certificate must name the host: an IP address by its SAN, a name by SNI and SAN. */
    unsigned char ip[16];
    if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(conn->ssl), host);
    } else {
        SSL_set_tlsext_host_name(conn->ssl, host);
        SSL_set1_host(conn->ssl, host);
    }
    SSL_set_fd(conn->ssl, conn->fd);
    if (SSL_connect(conn->ssl) != 1) {
        set_error(error, error_len, "TLS handshake");
        ld_conn_close(conn);
        return -1;
    }
    return 0;
}

void ld_conn_close(ld_conn *conn) {
    if (conn->ssl) {
        SSL_shutdown(conn->ssl);
        SSL_free(conn->ssl);
    }
    if (conn->ctx) SSL_CTX_free(conn->ctx);
    if (conn->fd >= 0) close(conn->fd);
    conn->ssl = NULL;
    conn->ctx = NULL;
    conn->fd = -1;
}

static int write_all(ld_conn *conn, const uint8_t *bytes, size_t len) {
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int n = SSL_write(conn->ssl, bytes, chunk);
        if (n <= 0) return -1;
        bytes += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(ld_conn *conn, uint8_t *bytes, size_t len) {
    while (len > 0) {
        int n = SSL_read(conn->ssl, bytes, (int)len);
        if (n <= 0) return -1;
        bytes += n;
        len -= (size_t)n;
    }
    return 0;
}

int ld_conn_write_frame(ld_conn *conn, const uint8_t *bytes, size_t len) {
    uint8_t head[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    if (write_all(conn, head, 4) != 0) return -1;
    return write_all(conn, bytes, len);
}

int ld_conn_send(ld_conn *conn, const Linli__Device__V1__DeviceMessage *message) {
    size_t len = linli__device__v1__device_message__get_packed_size(message);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes) return -1;
    linli__device__v1__device_message__pack(message, bytes);
    int rc = ld_conn_write_frame(conn, bytes, len);
    free(bytes);
    return rc;
}

int ld_conn_receive(ld_conn *conn, int timeout_ms, Linli__Device__V1__ServerMessage **message) {
    *message = NULL;
    if (SSL_pending(conn->ssl) == 0) {
        struct pollfd p = {conn->fd, POLLIN, 0};
        int ready = poll(&p, 1, timeout_ms);
        if (ready == 0) return 0;
        if (ready < 0) return errno == EINTR ? 0 : -1;
    }
    uint8_t head[4];
    if (read_all(conn, head, 4) != 0) return -1;
    size_t len = ((size_t)head[0] << 24) | ((size_t)head[1] << 16) | ((size_t)head[2] << 8) | head[3];
    if (len > LD_MAX_FRAME) return -1;
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes) return -1;
    if (read_all(conn, bytes, len) != 0) { free(bytes); return -1; }
    *message = linli__device__v1__server_message__unpack(NULL, len, bytes);
    free(bytes);
    return *message ? 1 : -1;
}

static int hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len, uint8_t out[32]) {
    unsigned int out_len = 32;
    return HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len) ? 0 : -1;
}

int ld_proof(const uint8_t secret[32], const uint8_t *nonce, size_t nonce_len, const uint8_t *client_nonce,
             size_t client_nonce_len, const char *tenant, const char *device_id, uint8_t proof[32]) {
    uint8_t client_key[32], stored_key[32], signature[32];
    static const char label[] = "Client Key";
    if (hmac_sha256(secret, 32, (const uint8_t *)label, sizeof label - 1, client_key) != 0) return -1;
    SHA256(client_key, 32, stored_key);
    size_t tenant_len = strlen(tenant), id_len = strlen(device_id);
    size_t len = nonce_len + client_nonce_len + tenant_len + 1 + id_len;
    uint8_t *message = malloc(len);
    if (!message) return -1;
    size_t at = 0;
    memcpy(message + at, nonce, nonce_len); at += nonce_len;
    memcpy(message + at, client_nonce, client_nonce_len); at += client_nonce_len;
    memcpy(message + at, tenant, tenant_len); at += tenant_len;
    message[at++] = ',';
    memcpy(message + at, device_id, id_len);
    int rc = hmac_sha256(stored_key, 32, message, len, signature);
    free(message);
    if (rc != 0) return -1;
    for (int i = 0; i < 32; i++) proof[i] = client_key[i] ^ signature[i];
    return 0;
}

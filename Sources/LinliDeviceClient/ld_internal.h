/* Internal declarations shared by the client's source files. */
#ifndef LD_INTERNAL_H
#define LD_INTERNAL_H

#include "linli_device.h"
#include "linli/device/v1/wire.pb-c.h"

#include <openssl/ssl.h>

#define LD_MAX_FRAME (2u << 20)
#define LD_MAX_BATCH 256

int64_t ld_now_ms(void);
size_t ld_buffer_batch(const ld_buffer *b, uint64_t after, size_t max, const uint8_t **bytes, size_t *lens,
                       uint64_t *seqs);
int ld_buffer_acknowledge(ld_buffer *b, uint64_t point);

int ld_whitelist_apply(ld_whitelist *w, const Linli__Device__V1__WhitelistDiff *diff);
/* 1: open; 0: refused, with the reason; key is the matched entry ("" when unknown). */
int ld_whitelist_check_card(const ld_whitelist *w, const char *card, const char *door, int64_t now_ms, const char **key,
                            const char **reason);
int ld_whitelist_check_qr(const ld_whitelist *w, const char *code, const char *door, int64_t now_ms, char *holder,
                          size_t holder_len, const char **reason);
/* Captures an access event with everything given. */
int ld_buffer_add_event(ld_buffer *b, const char *door, int method, const char *credential, int granted, const char *reason,
                        int64_t device_time_ms);

/* A TLS connection to the gateway. */
typedef struct ld_conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
} ld_conn;

int ld_conn_open(ld_conn *conn, const char *host, int port, const char *ca_path, char *error, size_t error_len);
void ld_conn_close(ld_conn *conn);
/* Writes one frame (length + bytes). 0 on success. */
int ld_conn_write_frame(ld_conn *conn, const uint8_t *bytes, size_t len);
/* Writes one DeviceMessage. */
int ld_conn_send(ld_conn *conn, const Linli__Device__V1__DeviceMessage *message);
/* Waits up to timeout_ms for a frame; 1: a message (free with ..._free_unpacked), 0: timeout,
 * -1: the connection ended or sent garbage. */
int ld_conn_receive(ld_conn *conn, int timeout_ms, Linli__Device__V1__ServerMessage **message);

/* SCRAM-style proof (wire.proto): 32 bytes into proof. */
int ld_proof(const uint8_t secret[32], const uint8_t *nonce, size_t nonce_len, const uint8_t *client_nonce,
             size_t client_nonce_len, const char *tenant, const char *device_id, uint8_t proof[32]);

#endif

/*
 * The Linli device client: protobuf-c frames over TLS to Linli's device gateway
 * (Protos/linli/device/v1/wire.proto). A device program links this library, opens a
 * connection with ld_connect, and runs ld_device_run, which sends the events in its buffer
 * file, resumes from the server's commit point, heartbeats, and runs commands.
 */
#ifndef LINLI_DEVICE_H
#define LINLI_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit statuses of ld_device_run and the linli-device program. */
enum {
    LD_OK = 0,
    LD_ERR_CONNECT = 1,       /* no TCP/TLS connection, or it broke */
    LD_ERR_CREDENTIAL = 2,    /* the gateway refused the credential */
    LD_ERR_DISABLED = 3,      /* the device (or its tenant) is disabled or revoked */
    LD_ERR_REFUSED = 4,       /* any other refusal (malformed, too large, timeout, ...) */
    LD_ERR_USAGE = 64,
    LD_ERR_BUFFER = 74        /* the buffer file could not be read or written */
};

typedef struct ld_options {
    const char *host;         /* gateway host (name or IP); the certificate must match it */
    int port;
    const char *ca_path;      /* PEM file of the CA that signed the gateway's certificate */
    const char *tenant;       /* tenant slug */
    const char *device_id;    /* from RegisterDevice */
    const char *secret_hex;   /* 64 hex characters, from RegisterDevice or RotateDeviceSecret */
    const char *firmware;
    const char *buffer_path;  /* events not yet acknowledged; NULL: in memory only */
    int run_seconds;          /* stop after this long; 0: run until refused or disconnected */
    int exit_when_acked;      /* stop once the buffer is empty */
    int quiet;                /* no progress lines on stderr */
    int heartbeat_override;   /* seconds; 0: what the server says */
    int frame_limit_probe;    /* testing: announce a frame over the limit after Welcome */
    int garbage_probe;        /* testing: send a frame that is not a DeviceMessage after Welcome */
    const char *door;         /* the door code swipes and scans happen at */
    const char *swipes[16];   /* card numbers presented at the door, 1 s after connecting */
    int n_swipes;
    const char *qr_codes[4];  /* QR codes scanned at the door, 1 s after connecting */
    int n_qr_codes;
    const char *lane;         /* the lane code plate reads happen at (barrier cameras) */
    const char *plates[16];   /* plates read at the lane, 1 s after connecting; the server answers each */
    int n_plates;
    const char *fires[16];    /* fire panel events "POINT:KIND" (kind fire, fault, supervisory, disabled,
                                 linkage_started, linkage_confirmed, reset), 1 s after connecting */
    int n_fires;
    const char *meters[16];   /* meter readings "CODE:VALUE_CENTI", 1 s after connecting */
    int n_meters;
    const char *elevators[8]; /* elevator reports "CODE:FLOOR:WHAT", WHAT running, stopped, trapped or fault=CODE */
    int n_elevators;
    const char *telemetry[16]; /* "METRIC:VALUE_MILLI", 1 s after connecting */
    int n_telemetry;
    int batch_every_ms;       /* paced load: capture batch_size events every this many ms */
    int batch_size;
} ld_options;

/* Set (from a signal handler) to end every running ld_device_run at its next turn, with LD_OK. */
extern volatile int ld_stop_requested;

/* What one run did. */
typedef struct ld_stats {
    uint64_t commit_point;
    uint64_t events_acked;
    uint64_t events_refused;
    uint64_t commands_run;
    uint64_t heartbeats;
    uint64_t heartbeat_acks;
    uint64_t gate_decisions;
    uint64_t reconnects;
    int refusal_code;          /* the server's RefusalCode when it refused, else 0 */
    char refusal_detail[201];
    /* event → commit latency per batch, microseconds, for benchmarks */
    uint64_t *ack_latencies_us;
    size_t n_ack_latencies;
    size_t cap_ack_latencies;
} ld_stats;

/* The local event buffer: events captured but not yet acknowledged, kept in a file so that
 * they survive a restart of the device process. */
typedef struct ld_buffer ld_buffer;

ld_buffer *ld_buffer_open(const char *path);   /* NULL path: memory only; NULL on error */
void ld_buffer_close(ld_buffer *buffer);
/* Captures an access event now (device time = clock + offset_ms). 0 on success. */
int ld_buffer_add_access(ld_buffer *buffer, const char *door, int method, const char *credential,
                         int granted, int64_t offset_ms);
/* The same, `count` times, written to the file once. */
int ld_buffer_add_access_many(ld_buffer *buffer, size_t count, const char *door, int method,
                              const char *credential, int granted, int64_t offset_ms);
/* A plate read at `lane` at (now + offset_ms), written to the file before it returns. */
int ld_buffer_add_plate(ld_buffer *buffer, const char *lane, const char *plate, int64_t offset_ms);
/* A fire panel event: `kind` is a Linli__Device__V1__FireEventKind value. */
int ld_buffer_add_fire(ld_buffer *buffer, const char *point, int kind, const char *detail, int64_t offset_ms);
/* A meter's cumulative register in hundredths of a unit. */
int ld_buffer_add_meter(ld_buffer *buffer, const char *code, uint64_t value_centi, int64_t offset_ms);
/* "CODE:VALUE" → code (up to 32 characters) and value; -1 when malformed. */
int ld_parse_meter(const char *text, char code[33], uint64_t *value);
/* An elevator report from "CODE:FLOOR:WHAT"; -1 when malformed. */
int ld_buffer_add_elevator(ld_buffer *buffer, const char *spec, int64_t offset_ms);
/* A telemetry value from "METRIC:VALUE_MILLI"; -1 when malformed. */
int ld_buffer_add_telemetry(ld_buffer *buffer, const char *spec, int64_t offset_ms);
/* "fire" → LINLI__DEVICE__V1__FIRE_EVENT_KIND__FIRE_EVENT_KIND_FIRE …; 0 when unknown. */
int ld_fire_kind(const char *name);
size_t ld_buffer_pending(const ld_buffer *buffer);
uint64_t ld_buffer_commit_point(const ld_buffer *buffer);

/* The whitelist the device holds (persisted beside the buffer file as <path>.whitelist). */
typedef struct ld_whitelist ld_whitelist;
ld_whitelist *ld_whitelist_open(const char *buffer_path);
void ld_whitelist_close(ld_whitelist *whitelist);
uint64_t ld_whitelist_version(const ld_whitelist *whitelist);
size_t ld_whitelist_count(const ld_whitelist *whitelist);

/* One device session: connect, authenticate, then send, heartbeat and obey until done.
 * Returns an LD_* status; fills stats when it is not NULL. */
int ld_device_run(const ld_options *options, ld_buffer *buffer, ld_whitelist *whitelist, ld_stats *stats);

/* The linli-device program (run, capture, simulate). */
int linli_device_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif

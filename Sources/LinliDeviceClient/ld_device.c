/* One device session: authenticate, resume from the commit point, send the buffer, heartbeat,
 * run commands. */
#define _POSIX_C_SOURCE 200809L
#include "ld_internal.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LD_RECENT_COMMANDS 64

volatile int ld_stop_requested = 0;

static int parse_secret(const char *hex, uint8_t out[32]) {
    if (!hex || strlen(hex) != 64) return -1;
    for (int i = 0; i < 32; i++) {
        unsigned int byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) return -1;
        out[i] = (uint8_t)byte;
    }
    return 0;
}

static int refusal_status(int code) {
    switch (code) {
    case LINLI__DEVICE__V1__REFUSAL_CODE__REFUSAL_CODE_BAD_CREDENTIAL: return LD_ERR_CREDENTIAL;
    case LINLI__DEVICE__V1__REFUSAL_CODE__REFUSAL_CODE_DEVICE_DISABLED: return LD_ERR_DISABLED;
    case LINLI__DEVICE__V1__REFUSAL_CODE__REFUSAL_CODE_UNAVAILABLE:
    case LINLI__DEVICE__V1__REFUSAL_CODE__REFUSAL_CODE_SUPERSEDED: return LD_ERR_CONNECT;
    default: return LD_ERR_REFUSED;
    }
}

static void note_refusal(ld_stats *stats, const Linli__Device__V1__Refusal *refusal, int quiet) {
    stats->refusal_code = refusal->code;
    snprintf(stats->refusal_detail, sizeof stats->refusal_detail, "%s", refusal->detail ? refusal->detail : "");
    if (!quiet) fprintf(stderr, "linli-device: refused (%d): %s\n", refusal->code, stats->refusal_detail);
}

static void record_latency(ld_stats *stats, uint64_t us) {
    if (stats->n_ack_latencies == stats->cap_ack_latencies) {
        size_t cap = stats->cap_ack_latencies ? stats->cap_ack_latencies * 2 : 256;
        uint64_t *grown = realloc(stats->ack_latencies_us, cap * sizeof *grown);
        if (!grown) return;
        stats->ack_latencies_us = grown;
        stats->cap_ack_latencies = cap;
    }
    stats->ack_latencies_us[stats->n_ack_latencies++] = us;
}

static int send_update(ld_conn *conn, const char *id, Linli__Device__V1__CommandOutcome outcome, const char *detail) {
    Linli__Device__V1__CommandUpdate update = LINLI__DEVICE__V1__COMMAND_UPDATE__INIT;
    update.command_id = (char *)id;
    update.outcome = outcome;
    update.detail = (char *)(detail ? detail : "");
    Linli__Device__V1__DeviceMessage message = LINLI__DEVICE__V1__DEVICE_MESSAGE__INIT;
    message.kind_case = LINLI__DEVICE__V1__DEVICE_MESSAGE__KIND_COMMAND_UPDATE;
    message.command_update = &update;
    return ld_conn_send(conn, &message);
}

/* Runs a command at most once per id, never after its expiry (by the server's clock). */
static int run_command(ld_conn *conn, const Linli__Device__V1__Command *command, int64_t clock_offset_ms,
                       char recent[][40], size_t *recent_next, ld_stats *stats, int quiet) {
    const char *id = command->command_id ? command->command_id : "";
    for (size_t i = 0; i < LD_RECENT_COMMANDS; i++) {
        if (strcmp(recent[i], id) == 0) {
            /* Sent again (a reconnect before our result arrived): report, do not run again. */
            return send_update(conn, id, LINLI__DEVICE__V1__COMMAND_OUTCOME__COMMAND_OUTCOME_SUCCEEDED, "already done");
        }
    }
    if (ld_now_ms() + clock_offset_ms >= command->expires_at_ms) {
        return send_update(conn, id, LINLI__DEVICE__V1__COMMAND_OUTCOME__COMMAND_OUTCOME_FAILED, "expired before it arrived");
    }
    if (send_update(conn, id, LINLI__DEVICE__V1__COMMAND_OUTCOME__COMMAND_OUTCOME_RECEIVED, "") != 0) return -1;
    snprintf(recent[*recent_next], 40, "%s", id);
    *recent_next = (*recent_next + 1) % LD_RECENT_COMMANDS;
    stats->commands_run++;
    switch (command->action_case) {
    case LINLI__DEVICE__V1__COMMAND__ACTION_OPEN_DOOR:
        printf("command %s open_door %s\n", id, command->open_door->door_code);
        break;
    case LINLI__DEVICE__V1__COMMAND__ACTION_REBOOT:
        printf("command %s reboot\n", id);
        break;
    case LINLI__DEVICE__V1__COMMAND__ACTION_BROADCAST:
        /* A terminal stores the task and plays it on schedule, offline too; the reference
         * client records that it holds it. */
        printf("command %s broadcast task %s v%u priority %u %s\n", id, command->broadcast->task_id, command->broadcast->version,
               command->broadcast->priority, command->broadcast->content);
        break;
    case LINLI__DEVICE__V1__COMMAND__ACTION_METER_CREDIT:
        /* A prepaid meter adds the credit once per credit id (the recent-ids list above). */
        printf("command %s meter_credit %s %lld fen credit %s\n", id, command->meter_credit->meter_code,
               (long long)command->meter_credit->amount_fen, command->meter_credit->credit_id);
        break;
    case LINLI__DEVICE__V1__COMMAND__ACTION_CANCEL_BROADCAST:
        printf("command %s cancel broadcast task %s\n", id, command->cancel_broadcast->task_id);
        break;
    default:
        fflush(stdout);
        return send_update(conn, id, LINLI__DEVICE__V1__COMMAND_OUTCOME__COMMAND_OUTCOME_FAILED, "unknown action");
    }
    fflush(stdout);
    (void)quiet;
    return send_update(conn, id, LINLI__DEVICE__V1__COMMAND_OUTCOME__COMMAND_OUTCOME_SUCCEEDED, "");
}

static int send_batch(ld_conn *conn, ld_buffer *buffer, uint64_t after, size_t max, uint64_t *last_sent) {
    const uint8_t *bytes[LD_MAX_BATCH];
    size_t lens[LD_MAX_BATCH];
    uint64_t seqs[LD_MAX_BATCH];
    if (max > LD_MAX_BATCH) max = LD_MAX_BATCH;
    size_t n = ld_buffer_batch(buffer, after, max, bytes, lens, seqs);
    if (n == 0) return 0;
    Linli__Device__V1__Event *events[LD_MAX_BATCH];
    size_t unpacked = 0;
    int rc = 0;
    for (; unpacked < n; unpacked++) {
        events[unpacked] = linli__device__v1__event__unpack(NULL, lens[unpacked], bytes[unpacked]);
        if (!events[unpacked]) { rc = -1; break; }
    }
    if (rc == 0) {
        Linli__Device__V1__EventBatch batch = LINLI__DEVICE__V1__EVENT_BATCH__INIT;
        batch.n_events = n;
        batch.events = events;
        Linli__Device__V1__DeviceMessage message = LINLI__DEVICE__V1__DEVICE_MESSAGE__INIT;
        message.kind_case = LINLI__DEVICE__V1__DEVICE_MESSAGE__KIND_EVENTS;
        message.events = &batch;
        rc = ld_conn_send(conn, &message);
        *last_sent = seqs[n - 1];
    }
    for (size_t i = 0; i < unpacked; i++) linli__device__v1__event__free_unpacked(events[i], NULL);
    return rc == 0 ? (int)n : -1;
}

/* Applies a whitelist diff and acknowledges the version it brought. */
static int take_whitelist(ld_conn *conn, ld_whitelist *whitelist, const Linli__Device__V1__WhitelistDiff *diff, int quiet) {
    uint64_t before = ld_whitelist_version(whitelist);
    if (ld_whitelist_apply(whitelist, diff) != 0) {
        fprintf(stderr, "linli-device: whitelist diff from %llu does not apply to %llu\n",
                (unsigned long long)diff->from_version, (unsigned long long)before);
        return 0;
    }
    if (!quiet) {
        printf("whitelist %llu -> %llu full=%d upserts=%zu removes=%zu entries=%zu\n", (unsigned long long)before,
               (unsigned long long)diff->to_version, diff->full ? 1 : 0, diff->n_upserts, diff->n_removes,
               ld_whitelist_count(whitelist));
        fflush(stdout);
    }
    Linli__Device__V1__WhitelistAck ack = LINLI__DEVICE__V1__WHITELIST_ACK__INIT;
    ack.version = diff->to_version;
    Linli__Device__V1__DeviceMessage message = LINLI__DEVICE__V1__DEVICE_MESSAGE__INIT;
    message.kind_case = LINLI__DEVICE__V1__DEVICE_MESSAGE__KIND_WHITELIST_ACK;
    message.whitelist_ack = &ack;
    return ld_conn_send(conn, &message);
}

/* Cards presented and QR codes scanned at the door, checked offline against the whitelist. */
static int door_actions(const ld_options *o, ld_buffer *buffer, const ld_whitelist *whitelist, int64_t clock_offset_ms) {
    const char *door = o->door ? o->door : "main";
    int64_t now = ld_now_ms() + clock_offset_ms;
    for (int i = 0; i < o->n_swipes; i++) {
        const char *key, *reason;
        int granted = ld_whitelist_check_card(whitelist, o->swipes[i], door, now, &key, &reason);
        printf("access card %s %s%s%s\n", o->swipes[i], granted ? "granted" : "refused", granted ? "" : ": ", reason);
        if (ld_buffer_add_event(buffer, door, LINLI__DEVICE__V1__ACCESS_METHOD__ACCESS_METHOD_CARD, key, granted, reason,
                                ld_now_ms()) != 0) {
            return -1;
        }
    }
    for (int i = 0; i < o->n_qr_codes; i++) {
        char holder[64];
        const char *reason;
        int granted = ld_whitelist_check_qr(whitelist, o->qr_codes[i], door, now, holder, sizeof holder, &reason);
        printf("access qr %s%s%s\n", granted ? "granted" : "refused", granted ? "" : ": ", reason);
        if (ld_buffer_add_event(buffer, door, LINLI__DEVICE__V1__ACCESS_METHOD__ACCESS_METHOD_QR, holder, granted, reason,
                                ld_now_ms()) != 0) {
            return -1;
        }
    }
    for (int i = 0; i < o->n_plates; i++) {
        if (ld_buffer_add_plate(buffer, o->lane ? o->lane : "in", o->plates[i], 0) != 0) return -1;
    }
    for (int i = 0; i < o->n_fires; i++) {
        /* "POINT:KIND"; the point may be empty (":reset" is the panel itself). */
        char point[40];
        const char *colon = strchr(o->fires[i], ':');
        size_t n = colon ? (size_t)(colon - o->fires[i]) : 0;
        if (!colon || n >= sizeof point) return -1;
        memcpy(point, o->fires[i], n);
        point[n] = '\0';
        if (ld_buffer_add_fire(buffer, point, ld_fire_kind(colon + 1), "", 0) != 0) return -1;
        printf("fire %s %s sent\n", point, colon + 1);
    }
    for (int i = 0; i < o->n_meters; i++) {
        char code[33];
        uint64_t value;
        if (ld_parse_meter(o->meters[i], code, &value) != 0 || ld_buffer_add_meter(buffer, code, value, 0) != 0) return -1;
    }
    for (int i = 0; i < o->n_elevators; i++) {
        if (ld_buffer_add_elevator(buffer, o->elevators[i], 0) != 0) return -1;
    }
    for (int i = 0; i < o->n_telemetry; i++) {
        if (ld_buffer_add_telemetry(buffer, o->telemetry[i], 0) != 0) return -1;
    }
    fflush(stdout);
    return 0;
}

/* The server's answer to a plate read: what the barrier does and what its LED and speaker say. */
static void show_gate(const Linli__Device__V1__GateDecision *g, ld_stats *stats) {
    stats->gate_decisions++;
    printf("gate %s seq %llu %s %s", g->lane_code, (unsigned long long)g->seq, g->open ? "OPEN" : "CLOSED", g->reason);
    if (g->due_fen > 0) printf(" due %lld.%02lld", (long long)(g->due_fen / 100), (long long)(g->due_fen % 100));
    if (g->session_id && g->session_id[0]) printf(" session %s", g->session_id);
    printf(" |");
    for (size_t i = 0; i < g->n_led_lines; i++) printf(" %s |", g->led_lines[i]);
    printf(" voice: %s\n", g->voice);
    fflush(stdout);
}

int ld_device_run(const ld_options *o, ld_buffer *buffer, ld_whitelist *whitelist, ld_stats *stats_out) {
    ld_stats local;
    ld_stats *stats = stats_out ? stats_out : &local;
    if (!stats_out) memset(&local, 0, sizeof local);
    uint8_t secret[32];
    if (parse_secret(o->secret_hex, secret) != 0) {
        if (!o->quiet) fprintf(stderr, "linli-device: the secret must be 64 hex characters\n");
        return LD_ERR_USAGE;
    }
    ld_conn conn;
    char error[300];
    if (ld_conn_open(&conn, o->host, o->port, o->ca_path, error, sizeof error) != 0) {
        if (!o->quiet) fprintf(stderr, "linli-device: %s\n", error);
        return LD_ERR_CONNECT;
    }
    int status = LD_ERR_CONNECT;
    Linli__Device__V1__ServerMessage *in = NULL;
    /* Challenge → Hello → Welcome. */
    if (ld_conn_receive(&conn, 10000, &in) != 1 || in->kind_case != LINLI__DEVICE__V1__SERVER_MESSAGE__KIND_CHALLENGE) {
        if (in && in->kind_case == LINLI__DEVICE__V1__SERVER_MESSAGE__KIND_REFUSAL) {
            note_refusal(stats, in->refusal, o->quiet);
            status = refusal_status(in->refusal->code);
        } else if (!o->quiet) {
            fprintf(stderr, "linli-device: no challenge from the gateway\n");
        }
        goto done;
    }
    int64_t clock_offset_ms = in->challenge->server_time_ms - ld_now_ms();
    uint8_t client_nonce[32], proof[32];
    RAND_bytes(client_nonce, sizeof client_nonce);
    if (ld_proof(secret, in->challenge->nonce.data, in->challenge->nonce.len, client_nonce, sizeof client_nonce,
                 o->tenant, o->device_id, proof) != 0) {
        goto done;
    }
    linli__device__v1__server_message__free_unpacked(in, NULL);
    in = NULL;
    Linli__Device__V1__Hello hello = LINLI__DEVICE__V1__HELLO__INIT;
    hello.tenant = (char *)o->tenant;
    hello.device_id = (char *)o->device_id;
    hello.client_nonce.data = client_nonce;
    hello.client_nonce.len = sizeof client_nonce;
    hello.proof.data = proof;
    hello.proof.len = sizeof proof;
    hello.firmware = (char *)(o->firmware ? o->firmware : "linli-device/1");
    hello.protocol_version = 1;
    hello.whitelist_version = ld_whitelist_version(whitelist);
    Linli__Device__V1__DeviceMessage message = LINLI__DEVICE__V1__DEVICE_MESSAGE__INIT;
    message.kind_case = LINLI__DEVICE__V1__DEVICE_MESSAGE__KIND_HELLO;
    message.hello = &hello;
    if (ld_conn_send(&conn, &message) != 0 || ld_conn_receive(&conn, 10000, &in) != 1) goto done;
    if (in->kind_case == LINLI__DEVICE__V1__SERVER_MESSAGE__KIND_REFUSAL) {
        note_refusal(stats, in->refusal, o->quiet);
        status = refusal_status(in->refusal->code);
        goto done;
    }
    if (in->kind_case != LINLI__DEVICE__V1__SERVER_MESSAGE__KIND_WELCOME) goto done;
    uint64_t commit = in->welcome->commit_point;
    int heartbeat_s = o->heartbeat_override > 0 ? o->heartbeat_override : (int)in->welcome->heartbeat_seconds;
    if (heartbeat_s <= 0) heartbeat_s = 30;
    size_t max_batch = in->welcome->max_batch ? in->welcome->max_batch : 64;
    clock_offset_ms = in->welcome->server_time_ms - ld_now_ms();
    linli__device__v1__server_message__free_unpacked(in, NULL);
    in = NULL;
    if (ld_buffer_acknowledge(buffer, commit) != 0) { status = LD_ERR_BUFFER; goto done; }
    stats->commit_point = commit;
    if (!o->quiet) fprintf(stderr, "linli-device: connected; commit point %llu, %zu buffered\n",
                           (unsigned long long)commit, ld_buffer_pending(buffer));

    if (o->frame_limit_probe) {
        /* Announce a frame one byte over the limit; the gateway must refuse it unread. */
        uint8_t head[4] = {0x00, 0x20, 0x00, 0x01};
        SSL_write(conn.ssl, head, 4);
    }
    if (o->garbage_probe) {
        static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
        ld_conn_write_frame(&conn, garbage, sizeof garbage);
    }

    char recent[LD_RECENT_COMMANDS][40];
    memset(recent, 0, sizeof recent);
    size_t recent_next = 0;
    uint64_t in_flight = 0; /* last seq of the batch awaiting its commit point; 0: none */
    int64_t batch_sent_ms = 0;
    int64_t started = ld_now_ms();
    int64_t next_heartbeat = started + heartbeat_s * 1000;
    int actions_done = o->n_swipes == 0 && o->n_qr_codes == 0 && o->n_plates == 0 && o->n_fires == 0 &&
                       o->n_meters == 0 && o->n_elevators == 0 && o->n_telemetry == 0;
    status = LD_OK;
    int64_t next_batch = started + o->batch_every_ms;
    for (;;) {
        int64_t now = ld_now_ms();
        if (ld_stop_requested) break;
        if (o->batch_every_ms > 0 && o->batch_size > 0 && now >= next_batch) {
            next_batch += o->batch_every_ms;
            if (ld_buffer_add_access_many(buffer, (size_t)o->batch_size, o->door ? o->door : "main",
                                          LINLI__DEVICE__V1__ACCESS_METHOD__ACCESS_METHOD_CARD, "card-sim", 1, 0) != 0) {
                status = LD_ERR_BUFFER;
                break;
            }
        }
        if (!actions_done && now - started >= 1000) {
            actions_done = 1;
            if (door_actions(o, buffer, whitelist, clock_offset_ms) != 0) { status = LD_ERR_BUFFER; break; }
        }
        if (o->run_seconds > 0 && now - started >= (int64_t)o->run_seconds * 1000) break;
        if (o->exit_when_acked && actions_done && ld_buffer_pending(buffer) == 0 && in_flight == 0) break;
        if (in_flight == 0 && ld_buffer_pending(buffer) > 0) {
            int sent = send_batch(&conn, buffer, commit, max_batch, &in_flight);
            if (sent < 0) { status = LD_ERR_CONNECT; break; }
            batch_sent_ms = ld_now_ms();
        }
        if (now >= next_heartbeat) {
            Linli__Device__V1__Heartbeat beat = LINLI__DEVICE__V1__HEARTBEAT__INIT;
            beat.device_time_ms = now;
            Linli__Device__V1__DeviceMessage m = LINLI__DEVICE__V1__DEVICE_MESSAGE__INIT;
            m.kind_case = LINLI__DEVICE__V1__DEVICE_MESSAGE__KIND_HEARTBEAT;
            m.heartbeat = &beat;
            if (ld_conn_send(&conn, &m) != 0) { status = LD_ERR_CONNECT; break; }
            stats->heartbeats++;
            next_heartbeat = now + heartbeat_s * 1000;
        }
        int64_t wait = next_heartbeat - ld_now_ms();
        if (o->batch_every_ms > 0 && next_batch - ld_now_ms() < wait) wait = next_batch - ld_now_ms();
        if (o->run_seconds > 0) {
            int64_t left = started + (int64_t)o->run_seconds * 1000 - ld_now_ms();
            if (left < wait) wait = left;
        }
        if (wait < 0) wait = 0;
        /* Door actions wait for their second; otherwise sleep until the next heartbeat or batch. */
        int64_t cap = actions_done ? 1000 : 100;
        int got = ld_conn_receive(&conn, (int)(wait > cap ? cap : wait < 1 ? 1 : wait), &in);
        if (got == 0) continue;
        if (got < 0) { status = LD_ERR_CONNECT; break; }
        switch (in->kind_case) {
        case LINLI__DEVICE__V1__SERVER_MESSAGE__KIND_COMMIT: {
            uint64_t point = in->commit->seq;
            stats->events_refused += in->commit->n_refused;
            for (size_t i = 0; i < in->commit->n_refused && !o->quiet; i++) {
                fprintf(stderr, "linli-device: event %llu refused: %s\n",
                        (unsigned long long)in->commit->refused[i]->seq, in->commit->refused[i]->reason);
            }
            if (point > commit) stats->events_acked += point - commit;
            commit = point > commit ? point : commit;
            stats->commit_point = commit;
            if (ld_buffer_acknowledge(buffer, commit) != 0) { status = LD_ERR_BUFFER; break; }
            if (in_flight && commit >= in_flight) {
                record_latency(stats, (uint64_t)(ld_now_ms() - batch_sent_ms) * 1000);
                in_flight = 0;
            }
            break;
        }
        case LINLI__DEVICE__V1__SERVER_MESSAGE__KIND_COMMAND:
            if (run_command(&conn, in->command, clock_offset_ms, recent, &recent_next, stats, o->quiet) != 0) {
                status = LD_ERR_CONNECT;
            }
            break;
        case LINLI__DEVICE__V1__SERVER_MESSAGE__KIND_HEARTBEAT_ACK:
            stats->heartbeat_acks++;
            break;
        case LINLI__DEVICE__V1__SERVER_MESSAGE__KIND_WHITELIST:
            if (take_whitelist(&conn, whitelist, in->whitelist, o->quiet) != 0) status = LD_ERR_CONNECT;
            break;
        case LINLI__DEVICE__V1__SERVER_MESSAGE__KIND_GATE:
            show_gate(in->gate, stats);
            break;
        case LINLI__DEVICE__V1__SERVER_MESSAGE__KIND_REFUSAL:
            note_refusal(stats, in->refusal, o->quiet);
            status = refusal_status(in->refusal->code);
            break;
        default:
            break;
        }
        linli__device__v1__server_message__free_unpacked(in, NULL);
        in = NULL;
        if (status != LD_OK) break;
    }
done:
    if (in) linli__device__v1__server_message__free_unpacked(in, NULL);
    ld_conn_close(&conn);
    if (!stats_out) free(local.ack_latencies_us);
    return status;
}

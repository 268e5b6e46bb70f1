/* The event buffer: <path> holds length-prefixed serialized Events, <path>.state the commit
 * point and the next sequence number. Both are replaced by rename, so a process killed at any
 * moment leaves either the old or the new file, never half of one. */
#define _POSIX_C_SOURCE 200809L
#include "ld_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

struct ld_record {
    uint64_t seq;
    uint8_t *bytes;
    size_t len;
};

struct ld_buffer {
    char *path;
    uint64_t commit_point;
    uint64_t next_seq;
    struct ld_record *records;
    size_t count;
    size_t cap;
};

int64_t ld_now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int write_file_atomically(const char *path, const void *data, size_t len) {
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n);
    if (!tmp) return -1;
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { free(tmp); return -1; }
    int ok = (len == 0 || fwrite(data, 1, len, f) == len) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (ok) ok = rename(tmp, path) == 0;
    if (!ok) unlink(tmp);
    free(tmp);
    return ok ? 0 : -1;
}

static int save_state(ld_buffer *b) {
    if (!b->path) return 0;
    char line[64];
    int len = snprintf(line, sizeof line, "%llu %llu\n", (unsigned long long)b->commit_point,
                       (unsigned long long)b->next_seq);
    size_t n = strlen(b->path) + 8;
    char *state = malloc(n);
    if (!state) return -1;
    snprintf(state, n, "%s.state", b->path);
    int rc = write_file_atomically(state, line, (size_t)len);
    free(state);
    return rc;
}

static int save_records(ld_buffer *b) {
    if (!b->path) return 0;
    size_t total = 0;
    for (size_t i = 0; i < b->count; i++) total += 4 + b->records[i].len;
    uint8_t *data = malloc(total ? total : 1);
    if (!data) return -1;
    size_t at = 0;
    for (size_t i = 0; i < b->count; i++) {
        uint32_t len = (uint32_t)b->records[i].len;
        data[at++] = (uint8_t)(len >> 24); data[at++] = (uint8_t)(len >> 16);
        data[at++] = (uint8_t)(len >> 8); data[at++] = (uint8_t)len;
        memcpy(data + at, b->records[i].bytes, len);
        at += len;
    }
    int rc = write_file_atomically(b->path, data, total);
    free(data);
    return rc;
}

static int push_record(ld_buffer *b, uint64_t seq, uint8_t *bytes, size_t len) {
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct ld_record *grown = realloc(b->records, cap * sizeof *grown);
        if (!grown) return -1;
        b->records = grown;
        b->cap = cap;
    }
    b->records[b->count++] = (struct ld_record){seq, bytes, len};
    return 0;
}

/* Packs `event` (its body set by the caller) as the next record, stamped `device_time_ms`;
 * persisting is the caller's. */
static int push_event(ld_buffer *b, Linli__Device__V1__Event *event, int64_t device_time_ms) {
    event->seq = b->next_seq;
    event->device_time_ms = device_time_ms;
    size_t len = linli__device__v1__event__get_packed_size(event);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes) return -1;
    linli__device__v1__event__pack(event, bytes);
    if (push_record(b, event->seq, bytes, len) != 0) { free(bytes); return -1; }
    b->next_seq++;
    return 0;
}

/* One event taken now (+ `offset_ms`) and persisted: the records first, then the counter (a
 * crash between the two leaves records whose seq the reopened buffer takes next_seq past). */
static int append_event(ld_buffer *b, Linli__Device__V1__Event *event, int64_t offset_ms) {
    if (push_event(b, event, ld_now_ms() + offset_ms) != 0) return -1;
    if (save_records(b) != 0 || save_state(b) != 0) return -1;
    return 0;
}

ld_buffer *ld_buffer_open(const char *path) {
    ld_buffer *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->next_seq = 1;
    if (!path) return b;
    b->path = strdup(path);
    size_t n = strlen(path) + 8;
    char *state = malloc(n);
    snprintf(state, n, "%s.state", path);
    FILE *f = fopen(state, "rb");
    free(state);
    if (f) {
        unsigned long long commit = 0, next = 1;
        if (fscanf(f, "%llu %llu", &commit, &next) != 2) { fclose(f); ld_buffer_close(b); return NULL; }
        fclose(f);
        b->commit_point = commit;
        b->next_seq = next;
    }
    f = fopen(path, "rb");
    if (f) {
        uint8_t head[4];
        while (fread(head, 1, 4, f) == 4) {
            size_t len = ((size_t)head[0] << 24) | ((size_t)head[1] << 16) | ((size_t)head[2] << 8) | head[3];
            if (len > LD_MAX_FRAME) break;
            uint8_t *bytes = malloc(len ? len : 1);
            if (!bytes || fread(bytes, 1, len, f) != len) { free(bytes); break; }
            Linli__Device__V1__Event *event = linli__device__v1__event__unpack(NULL, len, bytes);
            if (!event) { free(bytes); break; }
            uint64_t seq = event->seq;
            linli__device__v1__event__free_unpacked(event, NULL);
            if (seq <= b->commit_point) { free(bytes); continue; }
            if (seq >= b->next_seq) b->next_seq = seq + 1;
            if (push_record(b, seq, bytes, len) != 0) { free(bytes); break; }
        }
        fclose(f);
    } else if (errno != ENOENT) {
        ld_buffer_close(b);
        return NULL;
    }
    return b;
}

void ld_buffer_close(ld_buffer *b) {
    if (!b) return;
    for (size_t i = 0; i < b->count; i++) free(b->records[i].bytes);
    free(b->records);
    free(b->path);
    free(b);
}

static int add_access(ld_buffer *b, const char *door, int method, const char *credential, int granted, const char *reason,
                      int64_t device_time_ms) {
    Linli__Device__V1__AccessEvent access = LINLI__DEVICE__V1__ACCESS_EVENT__INIT;
    access.door_code = (char *)door;
    access.method = (Linli__Device__V1__AccessMethod)method;
    access.credential = (char *)credential;
    access.granted = granted ? 1 : 0;
    access.reason = (char *)(reason ? reason : "");
    Linli__Device__V1__Event event = LINLI__DEVICE__V1__EVENT__INIT;
    event.body_case = LINLI__DEVICE__V1__EVENT__BODY_ACCESS;
    event.access = &access;
    return push_event(b, &event, device_time_ms);
}

int ld_buffer_add_access(ld_buffer *b, const char *door, int method, const char *credential, int granted,
                         int64_t offset_ms) {
    return ld_buffer_add_access_many(b, 1, door, method, credential, granted, offset_ms);
}

int ld_buffer_add_access_many(ld_buffer *b, size_t count, const char *door, int method, const char *credential,
                              int granted, int64_t offset_ms) {
    for (size_t i = 0; i < count; i++) {
        if (add_access(b, door, method, credential, granted, "", ld_now_ms() + offset_ms) != 0) return -1;
    }
    /* The records first, then the counter: a crash between the two leaves records whose seq
     * the reopened buffer takes next_seq past. */
    if (save_records(b) != 0 || save_state(b) != 0) return -1;
    return 0;
}

size_t ld_buffer_pending(const ld_buffer *b) { return b->count; }
uint64_t ld_buffer_commit_point(const ld_buffer *b) { return b->commit_point; }

/* Internal: the records after `after`, up to `max`. */
size_t ld_buffer_batch(const ld_buffer *b, uint64_t after, size_t max, const uint8_t **bytes, size_t *lens,
                       uint64_t *seqs) {
    size_t n = 0;
    for (size_t i = 0; i < b->count && n < max; i++) {
        if (b->records[i].seq <= after) continue;
        bytes[n] = b->records[i].bytes;
        lens[n] = b->records[i].len;
        seqs[n] = b->records[i].seq;
        n++;
    }
    return n;
}

/* Internal: the server committed everything up to `point`; drop it and persist. */
int ld_buffer_acknowledge(ld_buffer *b, uint64_t point) {
    if (point <= b->commit_point && b->count == 0) return 0;
    if (point > b->commit_point) b->commit_point = point;
    if (b->next_seq <= point) b->next_seq = point + 1;
    size_t kept = 0;
    for (size_t i = 0; i < b->count; i++) {
        if (b->records[i].seq <= b->commit_point) {
            free(b->records[i].bytes);
        } else {
            b->records[kept++] = b->records[i];
        }
    }
    b->count = kept;
    /* The state first: a crash after it and before the records leaves records at or below the
     * commit point, which the next open skips. */
    if (save_state(b) != 0 || save_records(b) != 0) return -1;
    return 0;
}

int ld_buffer_add_event(ld_buffer *b, const char *door, int method, const char *credential, int granted, const char *reason,
                        int64_t device_time_ms) {
    if (add_access(b, door, method, credential, granted, reason, device_time_ms) != 0) return -1;
    if (save_records(b) != 0 || save_state(b) != 0) return -1;
    return 0;
}

int ld_buffer_add_plate(ld_buffer *b, const char *lane, const char *plate, int64_t offset_ms) {
    Linli__Device__V1__PlateEvent read = LINLI__DEVICE__V1__PLATE_EVENT__INIT;
    read.lane_code = (char *)lane;
    read.plate = (char *)plate;
    read.confidence = 95;
    Linli__Device__V1__Event event = LINLI__DEVICE__V1__EVENT__INIT;
    event.body_case = LINLI__DEVICE__V1__EVENT__BODY_PLATE;
    event.plate = &read;
    return append_event(b, &event, offset_ms);
}

int ld_fire_kind(const char *name) {
    static const char *names[] = {"", "fire", "fault", "supervisory", "disabled", "linkage_started", "linkage_confirmed", "reset"};
    for (int i = 1; i < (int)(sizeof names / sizeof *names); i++) {
        if (!strcmp(name, names[i])) return i;
    }
    return 0;
}

int ld_buffer_add_fire(ld_buffer *b, const char *point, int kind, const char *detail, int64_t offset_ms) {
    Linli__Device__V1__FireEvent fire = LINLI__DEVICE__V1__FIRE_EVENT__INIT;
    fire.point_code = (char *)point;
    fire.kind = (Linli__Device__V1__FireEventKind)kind;
    fire.detail = (char *)(detail ? detail : "");
    Linli__Device__V1__Event event = LINLI__DEVICE__V1__EVENT__INIT;
    event.body_case = LINLI__DEVICE__V1__EVENT__BODY_FIRE;
    event.fire = &fire;
    return append_event(b, &event, offset_ms);
}

int ld_parse_meter(const char *text, char code[33], uint64_t *value) {
    const char *colon = strchr(text, ':');
    if (!colon || colon == text || colon - text > 32 || !colon[1]) return -1;
    char *end;
    unsigned long long v = strtoull(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '-' || v > 100000000000ULL) return -1;
    memcpy(code, text, (size_t)(colon - text));
    code[colon - text] = '\0';
    *value = v;
    return 0;
}

int ld_buffer_add_meter(ld_buffer *b, const char *code, uint64_t value_centi, int64_t offset_ms) {
    Linli__Device__V1__MeterEvent meter = LINLI__DEVICE__V1__METER_EVENT__INIT;
    meter.meter_code = (char *)code;
    meter.value_centi = value_centi;
    Linli__Device__V1__Event event = LINLI__DEVICE__V1__EVENT__INIT;
    event.body_case = LINLI__DEVICE__V1__EVENT__BODY_METER;
    event.meter = &meter;
    return append_event(b, &event, offset_ms);
}

int ld_buffer_add_elevator(ld_buffer *b, const char *spec, int64_t offset_ms) {
    char code[33], what[40];
    long floor;
    const char *first = strchr(spec, ':');
    if (!first || first == spec || first - spec > 32) return -1;
    memcpy(code, spec, (size_t)(first - spec));
    code[first - spec] = '\0';
    char *end;
    floor = strtol(first + 1, &end, 10);
    if (end == first + 1 || *end != ':' || floor < -10 || floor > 200 || strlen(end + 1) >= sizeof what) return -1;
    strcpy(what, end + 1);
    Linli__Device__V1__ElevatorEvent elevator = LINLI__DEVICE__V1__ELEVATOR_EVENT__INIT;
    elevator.elevator_code = code;
    elevator.floor = (int32_t)floor;
    elevator.fault_code = "";
    if (!strcmp(what, "running")) elevator.state = LINLI__DEVICE__V1__ELEVATOR_STATE__ELEVATOR_STATE_RUNNING;
    else if (!strcmp(what, "stopped")) elevator.state = LINLI__DEVICE__V1__ELEVATOR_STATE__ELEVATOR_STATE_STOPPED;
    else if (!strcmp(what, "trapped")) {
        elevator.state = LINLI__DEVICE__V1__ELEVATOR_STATE__ELEVATOR_STATE_STOPPED;
        elevator.trapped = 1;
    } else if (!strncmp(what, "fault=", 6) && what[6] && strlen(what + 6) <= 32) {
        elevator.state = LINLI__DEVICE__V1__ELEVATOR_STATE__ELEVATOR_STATE_FAULT;
        elevator.fault_code = what + 6;
    } else {
        return -1;
    }
    Linli__Device__V1__Event event = LINLI__DEVICE__V1__EVENT__INIT;
    event.body_case = LINLI__DEVICE__V1__EVENT__BODY_ELEVATOR;
    event.elevator = &elevator;
    return append_event(b, &event, offset_ms);
}

int ld_buffer_add_telemetry(ld_buffer *b, const char *spec, int64_t offset_ms) {
    char metric[33];
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec || colon - spec > 32 || !colon[1]) return -1;
    memcpy(metric, spec, (size_t)(colon - spec));
    metric[colon - spec] = '\0';
    char *end;
    long long value = strtoll(colon + 1, &end, 10);
    if (*end != '\0') return -1;
    Linli__Device__V1__TelemetryEvent t = LINLI__DEVICE__V1__TELEMETRY_EVENT__INIT;
    t.metric = metric;
    t.value_milli = value;
    Linli__Device__V1__Event event = LINLI__DEVICE__V1__EVENT__INIT;
    event.body_case = LINLI__DEVICE__V1__EVENT__BODY_TELEMETRY;
    event.telemetry = &t;
    return append_event(b, &event, offset_ms);
}

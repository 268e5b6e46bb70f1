/* The linli-device program:
 *   linli-device run      one device: capture events, connect, send, obey commands
 *   linli-device capture  record events into the buffer file without connecting (offline)
 *   linli-device simulate N devices in one process, for tests and benchmarks */
#define _POSIX_C_SOURCE 200809L
#include "ld_internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(void) {
    fputs("usage:\n"
          "  linli-device run (--credentials FILE | --tenant SLUG --device ID [--secret HEX | env LINLI_DEVICE_SECRET])\n"
          "      [--host 127.0.0.1] [--port 8444] [--ca .data/tls/ca.crt] [--buffer FILE]\n"
          "      [--capture N] [--door CODE] [--time-offset-ms MS] [--run-seconds S] [--exit-when-acked]\n"
          "      [--reconnect] [--heartbeat-seconds S] [--quiet] [--swipe CARD]... [--scan-qr CODE]...\n"
          "      [--lane CODE --plate PLATE...]   plate reads at a barrier lane; the server answers each\n"
          "      [--fire POINT:KIND...]   fire panel events; KIND fire, fault, supervisory, disabled, linkage_started,\n"
          "                               linkage_confirmed or reset (\":reset\" resets the panel)\n"
          "      [--meter CODE:VALUE_CENTI...]   meter readings (capture: at --time-offset-ms)\n"
          "      [--elevator CODE:FLOOR:WHAT...]   WHAT running, stopped, trapped or fault=CODE\n"
          "      [--telemetry METRIC:VALUE_MILLI...]   energy telemetry (capture: at --time-offset-ms)\n"
          "  linli-device capture --buffer FILE (--capture N [--door CODE] | --lane CODE --plate PLATE...)\n"
          "      [--time-offset-ms MS]\n"
          "  linli-device simulate --devices-file FILE [--devices N] [--host H] [--port P] [--ca CA] [--capture N]\n"
          "      [--run-seconds S] [--heartbeat-seconds S] [--ramp CONNECTIONS_PER_S] [--batch-every-ms MS --batch-size N]\n"
          "      FILE: one device per line, \"tenant device_id secret\"\n",
          stderr);
}

typedef struct cli {
    ld_options options;
    const char *door;
    long capture;
    long long time_offset_ms;
    int reconnect;
    const char *devices_file;
    long devices; /* simulate: the first N devices of the file; 0: all */
    long ramp;    /* simulate: new connections per second (default 500) */
    char cred_tenant[65], cred_device[37], cred_secret[65];
} cli;

static int parse_long(const char *text, long min, long max, long *out) {
    char *end;
    long value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || value < min || value > max) return -1;
    *out = value;
    return 0;
}

static int parse_args(int argc, char **argv, cli *c) {
    memset(c, 0, sizeof *c);
    c->options.host = "127.0.0.1";
    c->options.port = 8444;
    c->options.ca_path = ".data/tls/ca.crt";
    c->options.secret_hex = getenv("LINLI_DEVICE_SECRET");
    c->door = "main";
    c->options.door = "main";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
#define NEED_VALUE if (!v) { fprintf(stderr, "linli-device: %s needs a value\n", a); return -1; } i++;
        if (!strcmp(a, "--host")) { NEED_VALUE c->options.host = v; }
        else if (!strcmp(a, "--port")) { NEED_VALUE if (parse_long(v, 1, 65535, &n)) goto bad; c->options.port = (int)n; }
        else if (!strcmp(a, "--ca")) { NEED_VALUE c->options.ca_path = v; }
        else if (!strcmp(a, "--tenant")) { NEED_VALUE c->options.tenant = v; }
        else if (!strcmp(a, "--device")) { NEED_VALUE c->options.device_id = v; }
        else if (!strcmp(a, "--secret")) { NEED_VALUE c->options.secret_hex = v; }
        else if (!strcmp(a, "--buffer")) { NEED_VALUE c->options.buffer_path = v; }
        else if (!strcmp(a, "--firmware")) { NEED_VALUE c->options.firmware = v; }
        else if (!strcmp(a, "--door")) { NEED_VALUE c->door = v; c->options.door = v; }
        else if (!strcmp(a, "--swipe")) {
            NEED_VALUE if (c->options.n_swipes == 16) goto bad;
            c->options.swipes[c->options.n_swipes++] = v;
        }
        else if (!strcmp(a, "--lane")) { NEED_VALUE c->options.lane = v; }
        else if (!strcmp(a, "--telemetry")) {
            NEED_VALUE if (c->options.n_telemetry == 16 || !strchr(v, ':')) goto bad;
            c->options.telemetry[c->options.n_telemetry++] = v;
        }
        else if (!strcmp(a, "--elevator")) {
            NEED_VALUE if (c->options.n_elevators == 8 || !strchr(v, ':')) goto bad;
            c->options.elevators[c->options.n_elevators++] = v;
        }
        else if (!strcmp(a, "--meter")) {
            char code[33];
            uint64_t value;
            NEED_VALUE if (c->options.n_meters == 16 || ld_parse_meter(v, code, &value) != 0) goto bad;
            c->options.meters[c->options.n_meters++] = v;
        }
        else if (!strcmp(a, "--fire")) {
            NEED_VALUE const char *colon = strchr(v, ':');
            if (c->options.n_fires == 16 || !colon || colon - v > 32 || !ld_fire_kind(colon + 1)) goto bad;
            c->options.fires[c->options.n_fires++] = v;
        }
        else if (!strcmp(a, "--plate")) {
            NEED_VALUE if (c->options.n_plates == 16) goto bad;
            c->options.plates[c->options.n_plates++] = v;
        }
        else if (!strcmp(a, "--scan-qr")) {
            NEED_VALUE if (c->options.n_qr_codes == 4) goto bad;
            c->options.qr_codes[c->options.n_qr_codes++] = v;
        }
        else if (!strcmp(a, "--capture")) { NEED_VALUE if (parse_long(v, 0, 10000000, &c->capture)) goto bad; }
        else if (!strcmp(a, "--time-offset-ms")) {
            NEED_VALUE if (parse_long(v, -400L * 86400 * 1000, 400L * 86400 * 1000, &n)) goto bad;
            c->time_offset_ms = n;
        }
        else if (!strcmp(a, "--run-seconds")) { NEED_VALUE if (parse_long(v, 0, 86400 * 365, &n)) goto bad; c->options.run_seconds = (int)n; }
        else if (!strcmp(a, "--heartbeat-seconds")) { NEED_VALUE if (parse_long(v, 1, 3600, &n)) goto bad; c->options.heartbeat_override = (int)n; }
        else if (!strcmp(a, "--devices-file")) { NEED_VALUE c->devices_file = v; }
        else if (!strcmp(a, "--devices")) { NEED_VALUE if (parse_long(v, 1, 100000, &c->devices)) goto bad; }
        else if (!strcmp(a, "--ramp")) { NEED_VALUE if (parse_long(v, 1, 100000, &c->ramp)) goto bad; }
        else if (!strcmp(a, "--batch-every-ms")) { NEED_VALUE if (parse_long(v, 1, 3600000, &n)) goto bad; c->options.batch_every_ms = (int)n; }
        else if (!strcmp(a, "--batch-size")) { NEED_VALUE if (parse_long(v, 1, 256, &n)) goto bad; c->options.batch_size = (int)n; }
        else if (!strcmp(a, "--credentials")) {
            /* "tenant device_id secret", as linli seed-demo writes it: keeps the secret off the command line. */
            NEED_VALUE
            FILE *f = fopen(v, "r");
            if (!f || fscanf(f, "%64s %36s %64s", c->cred_tenant, c->cred_device, c->cred_secret) != 3) {
                if (f) fclose(f);
                fprintf(stderr, "linli-device: %s: expected \"tenant device_id secret\"\n", v);
                return -1;
            }
            fclose(f);
            c->options.tenant = c->cred_tenant;
            c->options.device_id = c->cred_device;
            c->options.secret_hex = c->cred_secret;
        }
        else if (!strcmp(a, "--exit-when-acked")) c->options.exit_when_acked = 1;
        else if (!strcmp(a, "--reconnect")) c->reconnect = 1;
        else if (!strcmp(a, "--quiet")) c->options.quiet = 1;
        else if (!strcmp(a, "--probe-frame-limit")) c->options.frame_limit_probe = 1;
        else if (!strcmp(a, "--probe-garbage")) c->options.garbage_probe = 1;
        else { fprintf(stderr, "linli-device: unknown option %s\n", a); return -1; }
        continue;
    bad:
        fprintf(stderr, "linli-device: %s: bad value %s\n", a, v);
        return -1;
#undef NEED_VALUE
    }
    return 0;
}

static int capture(cli *c, ld_buffer *buffer) {
    if (c->capture <= 0) return 0;
    char credential[32];
    snprintf(credential, sizeof credential, "card-%ld", (long)getpid());
    if (ld_buffer_add_access_many(buffer, (size_t)c->capture, c->door, LINLI__DEVICE__V1__ACCESS_METHOD__ACCESS_METHOD_CARD,
                                  credential, 1, c->time_offset_ms) != 0) {
        fprintf(stderr, "linli-device: cannot write the buffer file\n");
        return LD_ERR_BUFFER;
    }
    return 0;
}

static int command_run(cli *c) {
    if (!c->options.tenant || !c->options.device_id || !c->options.secret_hex) {
        fputs("linli-device: run needs --tenant, --device and --secret (or LINLI_DEVICE_SECRET)\n", stderr);
        return LD_ERR_USAGE;
    }
    ld_buffer *buffer = ld_buffer_open(c->options.buffer_path);
    if (!buffer) { fputs("linli-device: cannot read the buffer file\n", stderr); return LD_ERR_BUFFER; }
    int status = capture(c, buffer);
    if (status != 0) { ld_buffer_close(buffer); return status; }
    ld_whitelist *whitelist = ld_whitelist_open(c->options.buffer_path);
    if (!whitelist) { ld_buffer_close(buffer); return LD_ERR_BUFFER; }
    time_t started = time(NULL);
    int backoff = 1;
    ld_stats stats;
    for (;;) {
        memset(&stats, 0, sizeof stats);
        ld_options options = c->options;
        if (options.run_seconds > 0) {
            long left = options.run_seconds - (long)(time(NULL) - started);
            if (left <= 0) { status = LD_OK; break; }
            options.run_seconds = (int)left;
        }
        status = ld_device_run(&options, buffer, whitelist, &stats);
        free(stats.ack_latencies_us);
        /* Swipes and scans happen once, not again on a reconnect. */
        c->options.n_swipes = 0;
        c->options.n_qr_codes = 0;
        if (status != LD_ERR_CONNECT || !c->reconnect) break;
        if (c->options.exit_when_acked && ld_buffer_pending(buffer) == 0) { status = LD_OK; break; }
        sleep((unsigned)backoff);
        if (backoff < 8) backoff *= 2;
    }
    printf("commit_point %llu pending %zu\n", (unsigned long long)ld_buffer_commit_point(buffer), ld_buffer_pending(buffer));
    ld_whitelist_close(whitelist);
    ld_buffer_close(buffer);
    return status;
}

static int command_capture(cli *c) {
    if (!c->options.buffer_path) { fputs("linli-device: capture needs --buffer\n", stderr); return LD_ERR_USAGE; }
    ld_buffer *buffer = ld_buffer_open(c->options.buffer_path);
    if (!buffer) { fputs("linli-device: cannot read the buffer file\n", stderr); return LD_ERR_BUFFER; }
    int status = capture(c, buffer);
    /* Offline plate reads: recorded now (shifted by --time-offset-ms), sent when the lane reconnects. */
    for (int i = 0; status == 0 && i < c->options.n_plates; i++) {
        if (ld_buffer_add_plate(buffer, c->options.lane ? c->options.lane : "in", c->options.plates[i], c->time_offset_ms) != 0) {
            fputs("linli-device: cannot write the buffer file\n", stderr);
            status = LD_ERR_BUFFER;
        }
    }
    for (int i = 0; status == 0 && i < c->options.n_telemetry; i++) {
        if (ld_buffer_add_telemetry(buffer, c->options.telemetry[i], c->time_offset_ms) != 0) {
            fputs("linli-device: bad --telemetry or cannot write the buffer file\n", stderr);
            status = LD_ERR_BUFFER;
        }
    }
    for (int i = 0; status == 0 && i < c->options.n_meters; i++) {
        char code[33];
        uint64_t value;
        if (ld_parse_meter(c->options.meters[i], code, &value) != 0 ||
            ld_buffer_add_meter(buffer, code, value, c->time_offset_ms) != 0) {
            fputs("linli-device: cannot write the buffer file\n", stderr);
            status = LD_ERR_BUFFER;
        }
    }
    printf("pending %zu\n", ld_buffer_pending(buffer));
    ld_buffer_close(buffer);
    return status;
}

/* simulate: one thread per device. */
typedef struct sim_device {
    ld_options options;
    char tenant[65], device_id[37], secret[65];
    long capture;
    int64_t start_at_ms;
    ld_stats stats;
    int status;
    int connected;
} sim_device;

static void sim_sleep_ms(int64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && !ld_stop_requested) {}
}

/* One simulated device: starts at its ramp slot, and like a real device reconnects with
 * backoff and jitter when the connection fails, until its run is over. */
static void *sim_thread(void *arg) {
    sim_device *d = arg;
    ld_buffer *buffer = ld_buffer_open(NULL);
    ld_whitelist *whitelist = ld_whitelist_open(NULL);
    if (!buffer || !whitelist) { ld_buffer_close(buffer); ld_whitelist_close(whitelist); d->status = LD_ERR_BUFFER; return NULL; }
    if (d->capture > 0 &&
        ld_buffer_add_access_many(buffer, (size_t)d->capture, "main", LINLI__DEVICE__V1__ACCESS_METHOD__ACCESS_METHOD_CARD,
                                  "card-sim", 1, 0) != 0) {
        d->status = LD_ERR_BUFFER;
    } else {
        sim_sleep_ms(d->start_at_ms - ld_now_ms());
        int64_t ends = d->options.run_seconds > 0 ? ld_now_ms() + (int64_t)d->options.run_seconds * 1000 : 0;
        unsigned int seed = (unsigned int)(uintptr_t)d;
        int backoff = 500;
        for (;;) {
            ld_options options = d->options;
            if (ends) {
                int64_t left = ends - ld_now_ms();
                if (left <= 0) { d->status = LD_OK; break; }
                options.run_seconds = (int)((left + 999) / 1000);
            }
            ld_stats run;
            memset(&run, 0, sizeof run);
            run.ack_latencies_us = d->stats.ack_latencies_us;
            run.n_ack_latencies = d->stats.n_ack_latencies;
            run.cap_ack_latencies = d->stats.cap_ack_latencies;
            d->status = ld_device_run(&options, buffer, whitelist, &run);
            d->stats.events_acked += run.events_acked;
            d->stats.events_refused += run.events_refused;
            d->stats.commands_run += run.commands_run;
            d->stats.heartbeats += run.heartbeats;
            d->stats.heartbeat_acks += run.heartbeat_acks;
            d->stats.ack_latencies_us = run.ack_latencies_us;
            d->stats.n_ack_latencies = run.n_ack_latencies;
            d->stats.cap_ack_latencies = run.cap_ack_latencies;
            if (d->status != LD_ERR_CONNECT || ld_stop_requested) break;
            if (d->options.exit_when_acked && ld_buffer_pending(buffer) == 0) { d->status = LD_OK; break; }
            d->stats.reconnects++;
            sim_sleep_ms(backoff / 2 + (int64_t)(rand_r(&seed) % (unsigned int)backoff));
            if (backoff < 8000) backoff *= 2;
        }
    }
    ld_whitelist_close(whitelist);
    ld_buffer_close(buffer);
    return NULL;
}

static void on_stop(int signal_number) {
    (void)signal_number;
    ld_stop_requested = 1;
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int command_simulate(cli *c) {
    if (!c->devices_file) { fputs("linli-device: simulate needs --devices-file\n", stderr); return LD_ERR_USAGE; }
    FILE *f = fopen(c->devices_file, "r");
    if (!f) { perror("linli-device: devices file"); return LD_ERR_USAGE; }
    size_t cap = 64, n = 0;
    sim_device *devices = calloc(cap, sizeof *devices);
    char line[256];
    while (devices && (c->devices == 0 || (long)n < c->devices) && fgets(line, sizeof line, f)) {
        if (n == cap) {
            sim_device *grown = realloc(devices, cap * 2 * sizeof *grown);
            if (!grown) break;
            memset(grown + cap, 0, cap * sizeof *grown);
            devices = grown;
            cap *= 2;
        }
        sim_device *d = &devices[n];
        if (sscanf(line, "%64s %36s %64s", d->tenant, d->device_id, d->secret) != 3) continue;
        n++;
    }
    fclose(f);
    if (!devices || n == 0 || (c->devices > 0 && (long)n < c->devices)) {
        fprintf(stderr, "linli-device: the file lists %zu devices, fewer than asked\n", n);
        free(devices);
        return LD_ERR_USAGE;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t *threads = calloc(n, sizeof *threads);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* SIGTERM ends the run early and still prints the summary. */
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    long ramp = c->ramp > 0 ? c->ramp : 500;
    int64_t first = ld_now_ms();
    for (size_t i = 0; i < n; i++) {
        sim_device *d = &devices[i];
        d->start_at_ms = first + (int64_t)(i * 1000 / (size_t)ramp);
        d->options = c->options;
        d->options.tenant = d->tenant;
        d->options.device_id = d->device_id;
        d->options.secret_hex = d->secret;
        d->options.quiet = 1;
        d->options.exit_when_acked = c->options.run_seconds == 0;
        d->capture = c->capture;
        if (pthread_create(&threads[i], &attr, sim_thread, d) != 0) { d->status = LD_ERR_CONNECT; threads[i] = 0; }
    }
    uint64_t acked = 0, refused = 0, commands = 0, heartbeats = 0, heartbeat_acks = 0, failures = 0, total_latencies = 0;
    uint64_t reconnects = 0;
    for (size_t i = 0; i < n; i++) {
        if (threads[i]) pthread_join(threads[i], NULL);
        acked += devices[i].stats.events_acked;
        refused += devices[i].stats.events_refused;
        commands += devices[i].stats.commands_run;
        heartbeats += devices[i].stats.heartbeats;
        heartbeat_acks += devices[i].stats.heartbeat_acks;
        reconnects += devices[i].stats.reconnects;
        total_latencies += devices[i].stats.n_ack_latencies;
        if (devices[i].status != LD_OK) failures++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    uint64_t *all = calloc(total_latencies ? total_latencies : 1, sizeof *all);
    size_t k = 0;
    for (size_t i = 0; i < n && all; i++) {
        for (size_t j = 0; j < devices[i].stats.n_ack_latencies; j++) all[k++] = devices[i].stats.ack_latencies_us[j];
        free(devices[i].stats.ack_latencies_us);
    }
    uint64_t p50 = 0, p99 = 0;
    if (all && k > 0) {
        qsort(all, k, sizeof *all, compare_u64);
        p50 = all[k / 2];
        p99 = all[(k * 99) / 100 < k ? (k * 99) / 100 : k - 1];
    }
    printf("{\"devices\": %zu, \"failed\": %llu, \"reconnects\": %llu, \"events_acked\": %llu, \"events_refused\": %llu, "
           "\"commands_run\": %llu, \"heartbeats\": %llu, \"heartbeat_acks\": %llu, \"heartbeat_acks_per_second\": %.1f, "
           "\"seconds\": %.3f, \"events_per_second\": %.1f, \"ack_p50_ms\": %.2f, \"ack_p99_ms\": %.2f}\n",
           n, (unsigned long long)failures, (unsigned long long)reconnects, (unsigned long long)acked, (unsigned long long)refused,
           (unsigned long long)commands, (unsigned long long)heartbeats, (unsigned long long)heartbeat_acks,
           seconds > 0 ? (double)heartbeat_acks / seconds : 0.0, seconds, seconds > 0 ? (double)acked / seconds : 0.0,
           (double)p50 / 1000.0, (double)p99 / 1000.0);
    free(all);
    free(threads);
    free(devices);
    pthread_attr_destroy(&attr);
    return failures ? LD_ERR_CONNECT : LD_OK;
}

int linli_device_main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) { usage(); return LD_ERR_USAGE; }
    cli c;
    if (parse_args(argc, argv, &c) != 0) { usage(); return LD_ERR_USAGE; }
    if (!strcmp(argv[1], "run")) return command_run(&c);
    if (!strcmp(argv[1], "capture")) return command_capture(&c);
    if (!strcmp(argv[1], "simulate")) return command_simulate(&c);
    usage();
    return LD_ERR_USAGE;
}

/* The device's whitelist: applied from WhitelistDiff, checked offline at the door, kept in
 * <buffer>.whitelist (replaced by rename) so that a restarted device reports the version it
 * holds and gets only what changed since. */
#define _POSIX_C_SOURCE 200809L
#include "ld_internal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct ld_entry {
    char key[40];
    int kind;
    char value[72];
    int64_t valid_from_ms, valid_until_ms;
    char doors[16 * 34];
} ld_entry;

struct ld_whitelist {
    char *path;
    uint64_t version;
    uint8_t qr_key[32];
    int has_qr_key;
    char door_codes[16][34];
    char door_buildings[16][40];
    int n_doors;
    ld_entry *entries;
    size_t count, cap;
};

static int save(ld_whitelist *w) {
    if (!w->path) return 0;
    size_t n = strlen(w->path) + 8;
    char *tmp = malloc(n);
    if (!tmp) return -1;
    snprintf(tmp, n, "%s.tmp", w->path);
    FILE *f = fopen(tmp, "w");
    if (!f) { free(tmp); return -1; }
    fprintf(f, "version %llu\n", (unsigned long long)w->version);
    if (w->has_qr_key) {
        fputs("qrkey ", f);
        for (int i = 0; i < 32; i++) fprintf(f, "%02x", w->qr_key[i]);
        fputc('\n', f);
    }
    for (int i = 0; i < w->n_doors; i++) fprintf(f, "door %s %s\n", w->door_codes[i], w->door_buildings[i][0] ? w->door_buildings[i] : "-");
    for (size_t i = 0; i < w->count; i++) {
        ld_entry *e = &w->entries[i];
        fprintf(f, "entry %s %d %s %lld %lld %s\n", e->key, e->kind, e->value, (long long)e->valid_from_ms,
                (long long)e->valid_until_ms, e->doors[0] ? e->doors : "-");
    }
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, w->path) == 0;
    if (!ok) unlink(tmp);
    free(tmp);
    return ok ? 0 : -1;
}

static ld_entry *find(ld_whitelist *w, const char *key) {
    for (size_t i = 0; i < w->count; i++) if (strcmp(w->entries[i].key, key) == 0) return &w->entries[i];
    return NULL;
}

static ld_entry *add(ld_whitelist *w) {
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        ld_entry *grown = realloc(w->entries, cap * sizeof *grown);
        if (!grown) return NULL;
        w->entries = grown;
        w->cap = cap;
    }
    ld_entry *e = &w->entries[w->count++];
    memset(e, 0, sizeof *e);
    return e;
}

ld_whitelist *ld_whitelist_open(const char *buffer_path) {
    ld_whitelist *w = calloc(1, sizeof *w);
    if (!w || !buffer_path) return w;
    size_t n = strlen(buffer_path) + 16;
    w->path = malloc(n);
    if (!w->path) { free(w); return NULL; }
    snprintf(w->path, n, "%s.whitelist", buffer_path);
    FILE *f = fopen(w->path, "r");
    if (!f) return w;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        unsigned long long version;
        char hex[65], code[34], building[40];
        if (sscanf(line, "version %llu", &version) == 1) {
            w->version = version;
        } else if (sscanf(line, "qrkey %64s", hex) == 1 && strlen(hex) == 64) {
            for (int i = 0; i < 32; i++) { unsigned int b; sscanf(hex + 2 * i, "%2x", &b); w->qr_key[i] = (uint8_t)b; }
            w->has_qr_key = 1;
        } else if (sscanf(line, "door %33s %39s", code, building) == 2 && w->n_doors < 16) {
            snprintf(w->door_codes[w->n_doors], 34, "%s", code);
            snprintf(w->door_buildings[w->n_doors], 40, "%s", strcmp(building, "-") ? building : "");
            w->n_doors++;
        } else if (strncmp(line, "entry ", 6) == 0) {
            ld_entry *e = add(w);
            if (!e) break;
            long long from, until;
            if (sscanf(line, "entry %39s %d %71s %lld %lld %543s", e->key, &e->kind, e->value, &from, &until, e->doors) != 6) {
                w->count--;
                continue;
            }
            e->valid_from_ms = from;
            e->valid_until_ms = until;
            if (strcmp(e->doors, "-") == 0) e->doors[0] = '\0';
        }
    }
    fclose(f);
    return w;
}

void ld_whitelist_close(ld_whitelist *w) {
    if (!w) return;
    free(w->entries);
    free(w->path);
    free(w);
}

uint64_t ld_whitelist_version(const ld_whitelist *w) { return w->version; }
size_t ld_whitelist_count(const ld_whitelist *w) { return w->count; }

int ld_whitelist_apply(ld_whitelist *w, const Linli__Device__V1__WhitelistDiff *diff) {
    if (!diff->full && diff->from_version != w->version) return -1; /* not from what we hold */
    if (diff->full) w->count = 0;
    for (size_t i = 0; i < diff->n_removes; i++) {
        ld_entry *e = find(w, diff->removes[i]);
        if (e) *e = w->entries[--w->count];
    }
    for (size_t i = 0; i < diff->n_upserts; i++) {
        const Linli__Device__V1__WhitelistEntry *u = diff->upserts[i];
        ld_entry *e = find(w, u->key);
        if (!e) e = add(w);
        if (!e) return -1;
        snprintf(e->key, sizeof e->key, "%s", u->key);
        e->kind = u->kind;
        snprintf(e->value, sizeof e->value, "%s", u->value);
        e->valid_from_ms = u->valid_from_ms;
        e->valid_until_ms = u->valid_until_ms;
        e->doors[0] = '\0';
        for (size_t d = 0; d < u->n_door_codes && d < 16; d++) {
            if (d) strncat(e->doors, ",", sizeof e->doors - strlen(e->doors) - 1);
            strncat(e->doors, u->door_codes[d], sizeof e->doors - strlen(e->doors) - 1);
        }
    }
    if (diff->qr_public_key.len == 32) {
        memcpy(w->qr_key, diff->qr_public_key.data, 32);
        w->has_qr_key = 1;
    }
    w->n_doors = 0;
    for (size_t i = 0; i < diff->n_doors && i < 16; i++) {
        snprintf(w->door_codes[i], 34, "%s", diff->doors[i]->code);
        snprintf(w->door_buildings[i], 40, "%s", diff->doors[i]->building_id);
        w->n_doors++;
    }
    w->version = diff->to_version;
    return save(w);
}

static int door_listed(const char *doors, const char *door) {
    size_t len = strlen(door);
    for (const char *p = doors; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && strncmp(p, door, n) == 0) return 1;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

int ld_whitelist_check_card(const ld_whitelist *w, const char *card, const char *door, int64_t now_ms, const char **key,
                            const char **reason) {
    for (size_t i = 0; i < w->count; i++) {
        const ld_entry *e = &w->entries[i];
        if (e->kind != LINLI__DEVICE__V1__CREDENTIAL_KIND__CREDENTIAL_KIND_CARD || strcmp(e->value, card) != 0) continue;
        *key = e->key;
        if (e->valid_until_ms && now_ms >= e->valid_until_ms) { *reason = "card expired"; return 0; }
        if (!door_listed(e->doors, door)) { *reason = "not allowed at this door"; return 0; }
        *reason = "";
        return 1;
    }
    *key = "";
    *reason = "unknown card";
    return 0;
}

static int from_base64url(const char *text, size_t len, uint8_t *out, size_t cap, size_t *out_len) {
    char *b64 = malloc(len + 4);
    if (!b64) return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) b64[n++] = text[i] == '-' ? '+' : text[i] == '_' ? '/' : text[i];
    while (n % 4) b64[n++] = '=';
    if (n / 4 * 3 > cap) { free(b64); return -1; }
    int decoded = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
    size_t pad = 0;
    for (size_t i = n; i > 0 && b64[i - 1] == '='; i--) pad++;
    free(b64);
    if (decoded < 0) return -1;
    *out_len = (size_t)decoded - pad;
    return 0;
}

int ld_whitelist_check_qr(const ld_whitelist *w, const char *code, const char *door, int64_t now_ms, char *holder,
                          size_t holder_len, const char **reason) {
    holder[0] = '\0';
    if (!w->has_qr_key) { *reason = "no QR key yet"; return 0; }
    if (strncmp(code, "LQ1.", 4) != 0) { *reason = "not a Linli QR code"; return 0; }
    const char *payload64 = code + 4;
    const char *dot = strchr(payload64, '.');
    if (!dot) { *reason = "malformed QR code"; return 0; }
    uint8_t payload[512], signature[96];
    size_t payload_len, signature_len;
    if (from_base64url(payload64, (size_t)(dot - payload64), payload, sizeof payload - 1, &payload_len) != 0 ||
        from_base64url(dot + 1, strlen(dot + 1), signature, sizeof signature, &signature_len) != 0 || signature_len != 64) {
        *reason = "malformed QR code";
        return 0;
    }
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, w->qr_key, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int valid = key && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
                EVP_DigestVerify(ctx, signature, signature_len, payload, payload_len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    if (!valid) { *reason = "QR signature does not verify"; return 0; }
    payload[payload_len] = '\0';
    /* community|holder|buildings or *|expires */
    char *fields[4];
    char *p = (char *)payload;
    for (int i = 0; i < 4; i++) {
        fields[i] = p;
        char *bar = strchr(p, '|');
        if (i < 3) {
            if (!bar) { *reason = "malformed QR code"; return 0; }
            *bar = '\0';
            p = bar + 1;
        }
    }
    snprintf(holder, holder_len, "%s", fields[1]);
    if (now_ms >= strtoll(fields[3], NULL, 10)) { *reason = "QR code expired"; return 0; }
    const char *building = NULL;
    for (int i = 0; i < w->n_doors; i++) if (strcmp(w->door_codes[i], door) == 0) building = w->door_buildings[i];
    if (!building) { *reason = "not a door of this device"; return 0; }
    if (building[0] && strcmp(fields[2], "*") != 0 && !door_listed(fields[2], building)) {
        *reason = "not allowed at this door";
        return 0;
    }
    *reason = "";
    return 1;
}

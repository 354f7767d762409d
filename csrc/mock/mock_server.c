/*
 * mock_server.c: the fake Leadpipe API on libmicrohttpd. See mock_server.h.
 *
 * Threads: libmicrohttpd runs the handlers on its own threads. Everything they share
 * (runs, idempotency keys, fault memory, counters, settings) is under `mu`; pages, stats
 * and CSV are generated outside it from a snapshot of the run (rows are a pure function
 * of the run's key and the index, so nothing big is ever stored).
 *
 * Faults are decided before a handler acts, so a faulted POST /runs creates nothing. The
 * fingerprint (method, path, query, Idempotency-Key) of a faulted request is remembered,
 * and the next request with that fingerprint is never faulted: a client that retries gets
 * every page, and every row, exactly once.
 *
 * License: MIT (see the repository).
 */
#include "mock_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <microhttpd.h>
#include <zlib.h>

#include "mock_buf.h"
#include "mock_json.h"
#include "mock_people.h"

#define MAX_BODY (64 * 1024)       /* request bodies beyond this get 413 */
#define MAX_IDEM_CHARS 120
#define FAULT_MEMORY 4096          /* fingerprints of faulted requests kept */
#define ROW_JSON_GUESS 1100        /* bytes reserved per row of a page */
#define CSV_CHUNK_ROWS 256
#define CONNECTION_TIMEOUT_S 60u
#define DAY_MS 86400000

const char *const lpm_fault_names[LPM_F_COUNT] = {
    "429", "429_date", "500", "502", "503", "drop", "truncate",
};

const char *const lpm_endpoint_names[LPM_EP_COUNT] = {
    "create_run", "list_runs", "cancel_run", "results", "stats", "export", "audiences", "exports",
    "other",
};

enum { RS_QUEUED, RS_RUNNING, RS_COMPLETED, RS_FAILED, RS_CANCELLED };
static const char *const status_names[] = {
    "queued", "running", "completed", "failed", "cancelled",
};

typedef struct {
    lpm_audience_t a;          /* owned copies of the strings */
    uint64_t key;
    char config_hash[65];
} audience_t;

typedef struct {
    char id[37];
    size_t aud;
    uint64_t ordinal;
    lpm_rows_t rows;
    int64_t nrows, candidates;
    int status, attempts;
    char *idem;                /* owned; NULL without Idempotency-Key */
    int64_t created_mono, started_mono;
    int64_t created, started, finished, cancelled, updated; /* wall ms, 0: none */
    char *stats_json;          /* owned; computed once when first asked */
    size_t stats_len;
    char export_id[37];        /* "" until POST .../exports stores one */
    int64_t export_created;    /* wall ms */
} run_t;

struct lpm_server {
    pthread_mutex_t mu;
    struct MHD_Daemon *api, *storage;
    int port, storage_port;
    char *api_key;
    size_t api_key_len;
    uint64_t seed;
    char org_id[37];
    audience_t *auds;
    size_t naud;
    int64_t export_cap;
    int64_t started_wall;      /* audiences were "created" a month before this */
    /* under mu */
    run_t **runs;
    size_t nruns, caprun;
    uint64_t run_seq;
    int64_t queued_ms, running_ms, latency_ms;
    int gzip;
    lpm_faults_t faults;
    uint64_t fault_tick, fault_seq;
    uint64_t faulted[FAULT_MEMORY];
    size_t nfaulted, faulted_next;
    lpm_stats_t stats;
    uint64_t instance;         /* request ids differ between servers */
    int stopping;              /* atomic: cuts latency sleeps short on stop() */
    /* atomic */
    uint64_t request_seq;
};

/* ===== REQUEST CONTEXT AND REPLIES ===== */

typedef struct {
    lpm_buf_t body;
    int too_large;
} req_ctx_t;

typedef struct {
    char ts[25];
    char rid[21];   /* "req_" + 16 hex */
} meta_t;

#define MAX_EXTRA 6

typedef struct {
    int status;
    lpm_buf_t body;
    const char *ctype;
    int json;                 /* a JSON envelope: may be gzipped */
    int fault;                /* -1, or LPM_F_DROP / LPM_F_TRUNCATE */
    int nextra;
    char hname[MAX_EXTRA][32];
    char hvalue[MAX_EXTRA][320];
    void *csv;                /* a CSV stream context instead of a body */
} reply_t;

static void reply_init(reply_t *r)
{
    r->status = 500;
    lpm_buf_init(&r->body, 0);
    r->ctype = "application/json";
    r->json = 0;
    r->fault = -1;
    r->nextra = 0;
    r->csv = NULL;
}

static void add_header(reply_t *r, const char *name, const char *value)
{
    if (r->nextra >= MAX_EXTRA)
        return;
    snprintf(r->hname[r->nextra], sizeof(r->hname[0]), "%s", name);
    snprintf(r->hvalue[r->nextra], sizeof(r->hvalue[0]), "%s", value);
    r->nextra++;
}

static void meta_init(lpm_server_t *s, meta_t *m)
{
    uint64_t n = __atomic_add_fetch(&s->request_seq, 1, __ATOMIC_RELAXED);
    uint64_t h = lpm_mix64(n ^ s->instance);
    char hex[17];
    lpm_hex64(hex, h);
    memcpy(m->rid, "req_", 4);
    memcpy(m->rid + 4, hex, 17);
    lpm_iso_time(m->ts, lpm_wall_ms());
}

static void meta_json(lpm_buf_t *b, const meta_t *m)
{
    LPM_LIT(b, "\"meta\":{\"timestamp\":\"");
    lpm_buf_add(b, m->ts, 24);
    LPM_LIT(b, "\",\"request_id\":\"");
    lpm_buf_add(b, m->rid, 20);
    LPM_LIT(b, "\"}");
}

static void data_begin(reply_t *r, int status)
{
    r->status = status;
    r->json = 1;
    r->body.len = 0;
    LPM_LIT(&r->body, "{\"data\":");
}

static void data_end(reply_t *r, const meta_t *m)
{
    lpm_buf_addc(&r->body, ',');
    meta_json(&r->body, m);
    lpm_buf_addc(&r->body, '}');
}

static void error_begin(reply_t *r, int status, const char *code, const char *message)
{
    r->status = status;
    r->json = 1;
    r->body.len = 0;
    LPM_LIT(&r->body, "{\"error\":{\"code\":");
    lpm_json_strz(&r->body, code);
    LPM_LIT(&r->body, ",\"message\":");
    lpm_json_strz(&r->body, message);
}

static void error_end(reply_t *r, const meta_t *m)
{
    LPM_LIT(&r->body, "},");
    meta_json(&r->body, m);
    lpm_buf_addc(&r->body, '}');
}

static void error_reply(reply_t *r, const meta_t *m, int status, const char *code,
                        const char *message)
{
    error_begin(r, status, code, message);
    error_end(r, m);
}

static void param_error(reply_t *r, const meta_t *m, const char *param, const char *message)
{
    error_begin(r, 400, "INVALID_PARAMETER", message);
    LPM_LIT(&r->body, ",\"param\":");
    lpm_json_strz(&r->body, param);
    error_end(r, m);
}

/* ===== RUNS (callers hold mu) ===== */

static void run_refresh(lpm_server_t *s, run_t *run, int64_t now)
{
    if (run->status == RS_QUEUED && now - run->created_mono >= s->queued_ms) {
        run->status = RS_RUNNING;
        run->started_mono = run->created_mono + s->queued_ms;
        run->started = run->created + s->queued_ms;
        run->updated = run->started;
        run->attempts = 1;
    }
    if (run->status == RS_RUNNING && now - run->started_mono >= s->running_ms) {
        run->finished = run->started + s->running_ms;
        run->updated = run->finished;
        run->status = s->auds[run->aud].a.fail_code ? RS_FAILED : RS_COMPLETED;
    }
}

static void run_init(lpm_server_t *s, run_t *run, size_t aud, uint64_t ordinal)
{
    const audience_t *a = &s->auds[aud];
    int64_t now = lpm_wall_ms();
    memset(run, 0, sizeof(*run));
    run->aud = aud;
    run->ordinal = ordinal;
    /* distinct tags keep the derived values (ids, keys, hashes) unrelated */
    lpm_uuid_from(run->id, lpm_mix64(s->seed ^ lpm_mix64(0x72756e6964000000ULL ^ ordinal)),
                  lpm_mix64(a->key ^ lpm_mix64(0x72756e6964ff0000ULL ^ ordinal)));
    run->rows.key = lpm_mix64(s->seed ^ lpm_mix64(a->key ^ lpm_mix64(0x726f777300000000ULL ^ ordinal)));
    lpm_iso_date(run->rows.data_date, now - DAY_MS);
    run->nrows = a->a.rows;
    run->candidates = run->nrows +
                      (int64_t)(lpm_mix64(run->rows.key) % (uint64_t)(2 * run->nrows + 50));
    run->status = RS_QUEUED;
    run->created_mono = lpm_mono_ms();
    run->created = now;
    run->updated = now;
}

static run_t *find_run(lpm_server_t *s, const char *id, size_t aud_or_all)
{
    size_t i;
    for (i = 0; i < s->nruns; i++) {
        run_t *run = s->runs[i];
        if (strncasecmp(run->id, id, 36) == 0 && (aud_or_all == (size_t)-1 || run->aud == aud_or_all))
            return run;
    }
    return NULL;
}

/* ===== JSON OF RUNS ===== */

static void json_time(lpm_buf_t *b, int64_t wall)
{
    char ts[25];
    if (!wall) {
        LPM_LIT(b, "null");
        return;
    }
    lpm_iso_time(ts, wall);
    lpm_buf_addc(b, '"');
    lpm_buf_add(b, ts, 24);
    lpm_buf_addc(b, '"');
}

static int64_t result_count(const run_t *run)
{
    return run->status == RS_COMPLETED ? run->nrows : 0;
}

static int64_t candidate_count(const run_t *run)
{
    return run->status == RS_COMPLETED ? run->candidates : 0;
}

/* The Run object. */
static void run_json(lpm_buf_t *b, const lpm_server_t *s, const run_t *run)
{
    const audience_t *a = &s->auds[run->aud];
    int failed = run->status == RS_FAILED, done = run->status == RS_COMPLETED;
    LPM_LIT(b, "{\"id\":\"");
    lpm_buf_add(b, run->id, 36);
    LPM_LIT(b, "\",\"audienceId\":\"");
    lpm_buf_add(b, a->a.id, 36);
    LPM_LIT(b, "\",\"organizationId\":\"");
    lpm_buf_add(b, s->org_id, 36);
    LPM_LIT(b, "\",\"status\":\"");
    lpm_buf_adds(b, status_names[run->status]);
    LPM_LIT(b, "\",\"runType\":\"manual\",\"configHash\":\"");
    lpm_buf_add(b, a->config_hash, 64);
    LPM_LIT(b, "\",\"dataDate\":\"");
    lpm_buf_add(b, run->rows.data_date, 10);
    LPM_LIT(b, "\",\"resultKey\":");
    if (done) {
        LPM_LIT(b, "\"intent-runs/");
        lpm_buf_add(b, a->a.id, 36);
        lpm_buf_addc(b, '/');
        lpm_buf_add(b, run->id, 36);
        LPM_LIT(b, "\"");
    } else {
        LPM_LIT(b, "null");
    }
    LPM_LIT(b, ",\"candidateCount\":");
    lpm_buf_addint(b, candidate_count(run));
    LPM_LIT(b, ",\"resultCount\":");
    lpm_buf_addint(b, result_count(run));
    LPM_LIT(b, ",\"attempts\":");
    lpm_buf_addint(b, run->attempts);
    LPM_LIT(b, ",\"nextAttemptAt\":null,\"idempotencyKey\":");
    lpm_json_strz(b, run->idem);
    LPM_LIT(b, ",\"errorCode\":");
    lpm_json_strz(b, failed ? a->a.fail_code : NULL);
    LPM_LIT(b, ",\"errorMessage\":");
    lpm_json_strz(b, failed ? a->a.fail_message : NULL);
    LPM_LIT(b, ",\"startedAt\":");
    json_time(b, run->started);
    LPM_LIT(b, ",\"completedAt\":");
    json_time(b, done ? run->finished : 0);
    LPM_LIT(b, ",\"cancelledAt\":");
    json_time(b, run->cancelled);
    LPM_LIT(b, ",\"createdAt\":");
    json_time(b, run->created);
    LPM_LIT(b, ",\"updatedAt\":");
    json_time(b, run->updated);
    lpm_buf_addc(b, '}');
}

/* The short run of the results endpoint. */
static void run_json_short(lpm_buf_t *b, const run_t *run)
{
    LPM_LIT(b, "{\"id\":\"");
    lpm_buf_add(b, run->id, 36);
    LPM_LIT(b, "\",\"status\":\"");
    lpm_buf_adds(b, status_names[run->status]);
    LPM_LIT(b, "\",\"runType\":\"manual\",\"candidateCount\":");
    lpm_buf_addint(b, candidate_count(run));
    LPM_LIT(b, ",\"resultCount\":");
    lpm_buf_addint(b, result_count(run));
    if (run->status == RS_COMPLETED) {
        LPM_LIT(b, ",\"completedAt\":");
        json_time(b, run->finished);
    }
    lpm_buf_addc(b, '}');
}

/* The run of the stats endpoint. */
static void run_json_stats(lpm_buf_t *b, const lpm_server_t *s, const run_t *run)
{
    LPM_LIT(b, "{\"id\":\"");
    lpm_buf_add(b, run->id, 36);
    LPM_LIT(b, "\",\"audienceId\":\"");
    lpm_buf_add(b, s->auds[run->aud].a.id, 36);
    LPM_LIT(b, "\",\"status\":\"");
    lpm_buf_adds(b, status_names[run->status]);
    LPM_LIT(b, "\",\"runType\":\"manual\",\"resultCount\":");
    lpm_buf_addint(b, result_count(run));
    LPM_LIT(b, ",\"completedAt\":");
    json_time(b, run->status == RS_COMPLETED ? run->finished : 0);
    lpm_buf_addc(b, '}');
}

/* 409 for a run that cannot serve results, stats or an export. */
static void run_conflict(reply_t *r, const meta_t *m, const lpm_server_t *s, const run_t *run)
{
    const audience_t *a = &s->auds[run->aud];
    int failed = run->status == RS_FAILED;
    char msg[300];
    if (failed)
        snprintf(msg, sizeof(msg), "run failed: %s", a->a.fail_message ? a->a.fail_message : "");
    else
        snprintf(msg, sizeof(msg), "run was cancelled");
    error_begin(r, 409, failed ? "RUN_FAILED" : "RUN_CANCELLED", msg);
    LPM_LIT(&r->body, ",\"run\":{\"id\":\"");
    lpm_buf_add(&r->body, run->id, 36);
    LPM_LIT(&r->body, "\",\"status\":\"");
    lpm_buf_adds(&r->body, status_names[run->status]);
    LPM_LIT(&r->body, "\",\"errorCode\":");
    lpm_json_strz(&r->body, failed ? a->a.fail_code : NULL);
    LPM_LIT(&r->body, ",\"errorMessage\":");
    lpm_json_strz(&r->body, failed ? a->a.fail_message : NULL);
    LPM_LIT(&r->body, "}");
    error_end(r, m);
}

/* ===== REQUEST HELPERS ===== */

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Query parameter: 0 absent, 1 present (*v may be NULL for "?limit"). */
static int query_param(struct MHD_Connection *c, const char *name, const char **v)
{
    size_t vlen = 0;
    *v = NULL;
    return MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, name, strlen(name), v,
                                         &vlen) == MHD_YES;
}

/* Strict non-negative decimal integer no larger than max. */
static int parse_uint(const char *v, uint64_t max, uint64_t *out)
{
    uint64_t x = 0;
    if (!v || !*v)
        return 0;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return 0;
        if (x > (max - (uint64_t)(*v - '0')) / 10)
            return 0;
        x = x * 10 + (uint64_t)(*v - '0');
    }
    *out = x;
    return 1;
}

/* Reads an integer query parameter into *out; on error fills a 400 and returns 0. */
static int int_param(struct MHD_Connection *c, reply_t *r, const meta_t *m, const char *name,
                     uint64_t def, uint64_t lo, uint64_t hi, const char *message, uint64_t *out)
{
    const char *v;
    uint64_t x = def;
    if (query_param(c, name, &v) && (!parse_uint(v, hi, &x) || x < lo)) {
        param_error(r, m, name, message);
        return 0;
    }
    *out = x;
    return 1;
}

/* Accept-Encoding: gzip (or x-gzip, or *) with a q-value other than 0. */
static int accepts_gzip(const char *h)
{
    const char *p = h;
    if (!h)
        return 0;
    while (*p) {
        const char *tok;
        size_t len;
        int is_gzip, qzero = 0;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        len = (size_t)(p - tok);
        is_gzip = (len == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
                  (len == 6 && strncasecmp(tok, "x-gzip", 6) == 0) || (len == 1 && *tok == '*');
        while (*p && *p != ',') {
            if ((*p == 'q' || *p == 'Q') && p[1] == '=') {
                const char *q = p + 2;
                if (*q == '0') {
                    q++;
                    if (*q == '.')
                        q++;
                    while (*q == '0')
                        q++;
                    qzero = !(*q >= '1' && *q <= '9');
                }
            }
            p++;
        }
        if (is_gzip && !qzero)
            return 1;
    }
    return 0;
}

static int gzip_buf(const char *in, size_t n, lpm_buf_t *out)
{
    z_stream z;
    uLong bound;
    memset(&z, 0, sizeof(z));
    if (n > 0xffffffffu)
        return 0;
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    bound = deflateBound(&z, (uLong)n);
    lpm_buf_init(out, (size_t)bound);
    if (out->oom) {
        deflateEnd(&z);
        return 0;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out->data;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&z);
        lpm_buf_free(out);
        return 0;
    }
    out->len = (size_t)z.total_out;
    deflateEnd(&z);
    return 1;
}

/* ===== FAULTS ===== */

static enum MHD_Result fingerprint_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    uint64_t *h = cls;
    (void)kind;
    *h = lpm_fnv(*h, key, strlen(key) + 1);
    if (value)
        *h = lpm_fnv(*h, value, strlen(value));
    *h = lpm_fnv(*h, "&", 1);
    return MHD_YES;
}

/* Hash of method, path, query and Idempotency-Key: what identifies a retry. */
static uint64_t fingerprint(struct MHD_Connection *c, const char *method, const char *url)
{
    uint64_t h = LPM_FNV_INIT;
    const char *key = header(c, "Idempotency-Key");
    h = lpm_fnv(h, method, strlen(method) + 1);
    h = lpm_fnv(h, url, strlen(url) + 1);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, fingerprint_arg, &h);
    h = lpm_fnv(h, "\n", 1);
    if (key)
        h = lpm_fnv(h, key, strlen(key));
    return h;
}

/* Under mu: the fault kind to inject for this request, or -1. */
static int decide_fault(lpm_server_t *s, uint64_t fp)
{
    const lpm_faults_t *f = &s->faults;
    uint64_t r = 0;
    size_t i;
    int hit, kind;
    if (!f->enabled || f->nkinds == 0)
        return -1;
    for (i = 0; i < s->nfaulted; i++) {
        if (s->faulted[i] == fp) {
            /* a retry of a faulted request: let it through, once */
            s->faulted[i] = s->faulted[--s->nfaulted];
            return -1;
        }
    }
    s->fault_tick++;
    if (f->every) {
        hit = s->fault_tick % f->every == 0;
    } else {
        r = lpm_mix64(f->seed ^ lpm_mix64(s->fault_tick));
        hit = (double)(r >> 11) * (1.0 / 9007199254740992.0) < f->rate;
    }
    if (!hit)
        return -1;
    if (f->every)
        kind = f->kinds[s->fault_seq % (uint64_t)f->nkinds];
    else
        kind = f->kinds[lpm_mix64(r ^ 0x6b696e64ULL) % (uint64_t)f->nkinds];
    s->fault_seq++;
    if (s->nfaulted < FAULT_MEMORY) {
        s->faulted[s->nfaulted++] = fp;
    } else {
        s->faulted[s->faulted_next] = fp;
        s->faulted_next = (s->faulted_next + 1) % FAULT_MEMORY;
    }
    s->stats.faults++;
    s->stats.faults_by_kind[kind]++;
    return kind;
}

static void fault_reply(reply_t *r, const meta_t *m, int kind, int64_t retry_after)
{
    char value[40];
    switch (kind) {
    case LPM_F_429:
    case LPM_F_429_DATE:
        error_reply(r, m, 429, "RATE_LIMITED", "rate limit exceeded (injected by leadpipe.mock)");
        if (kind == LPM_F_429) {
            snprintf(value, sizeof(value), "%lld", (long long)retry_after);
        } else {
            char date[30];
            lpm_http_date(date, (lpm_wall_ms() + 999) / 1000 + retry_after);
            snprintf(value, sizeof(value), "%s", date);
        }
        add_header(r, "Retry-After", value);
        break;
    case LPM_F_500:
        error_reply(r, m, 500, "INTERNAL_ERROR", "internal server error (injected by leadpipe.mock)");
        break;
    case LPM_F_502:
        error_reply(r, m, 502, "BAD_GATEWAY", "bad gateway (injected by leadpipe.mock)");
        break;
    default:
        error_reply(r, m, 503, "SERVICE_UNAVAILABLE",
                    "service unavailable (injected by leadpipe.mock)");
        break;
    }
}

/* ===== API HANDLERS ===== */

enum {
    R_NONE, R_AUDIENCES, R_AUDIENCE, R_RUNS, R_RUN, R_RESULTS, R_STATS, R_EXPORT,
    R_EXPORTS, R_EXPORT_ONE
};

typedef struct {
    int kind, ep, allowed;
    const char *allow;
    const char *aud, *run, *exp;
    size_t aud_len, run_len, exp_len;
} route_t;

static int seg_is(const char *seg, size_t len, const char *name)
{
    return len == strlen(name) && memcmp(seg, name, len) == 0;
}

/* 1 when method is one of the comma-separated names in allow ("GET, POST"). */
static int method_in(const char *allow, const char *method)
{
    size_t n = strlen(method);
    const char *p = allow;
    while (*p) {
        size_t k = strcspn(p, ",");
        if (k == n && memcmp(p, method, n) == 0)
            return 1;
        p += k;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

/* Sets the route's kind, endpoint and whether `method` is allowed on it. */
static void route_set(route_t *rt, int kind, int ep, const char *method, const char *allow)
{
    rt->kind = kind;
    rt->ep = ep;
    rt->allow = allow;
    rt->allowed = method_in(allow, method);
    if (!rt->allowed)
        rt->ep = LPM_EP_OTHER;
}

static void route(const char *url, const char *method, route_t *rt)
{
    static const char prefix[] = "/v1/intent/audiences";
    const char *seg[5], *p;
    size_t len[5];
    int n = 0, post = strcmp(method, "POST") == 0;

    memset(rt, 0, sizeof(*rt));
    rt->kind = R_NONE;
    rt->ep = LPM_EP_OTHER;
    if (strcmp(url, prefix) == 0) {
        route_set(rt, R_AUDIENCES, LPM_EP_AUDIENCES, method, "GET");
        return;
    }
    if (strncmp(url, prefix, sizeof(prefix) - 1) != 0 || url[sizeof(prefix) - 1] != '/')
        return;
    p = url + sizeof(prefix);
    for (;;) {
        const char *slash = strchr(p, '/');
        if (n == 5)
            return;
        seg[n] = p;
        len[n] = slash ? (size_t)(slash - p) : strlen(p);
        n++;
        if (!slash)
            break;
        p = slash + 1;
    }
    rt->aud = seg[0];
    rt->aud_len = len[0];
    if (n == 1) {
        if (len[0] == 0)
            return;
        route_set(rt, R_AUDIENCE, LPM_EP_AUDIENCES, method, "GET");
        return;
    }
    if (!seg_is(seg[1], len[1], "runs"))
        return;
    if (n == 2) {
        route_set(rt, R_RUNS, post ? LPM_EP_CREATE_RUN : LPM_EP_LIST_RUNS, method, "GET, POST");
        return;
    }
    rt->run = seg[2];
    rt->run_len = len[2];
    if (n == 3) {
        route_set(rt, R_RUN, strcmp(method, "DELETE") == 0 ? LPM_EP_CANCEL_RUN : LPM_EP_OTHER,
                  method, "GET, DELETE");
        return;
    }
    if (n == 5) {
        if (!seg_is(seg[3], len[3], "exports"))
            return;
        rt->exp = seg[4];
        rt->exp_len = len[4];
        route_set(rt, R_EXPORT_ONE, LPM_EP_EXPORTS, method, "GET");
    } else if (seg_is(seg[3], len[3], "results")) {
        route_set(rt, R_RESULTS, LPM_EP_RESULTS, method, "GET");
    } else if (seg_is(seg[3], len[3], "stats")) {
        route_set(rt, R_STATS, LPM_EP_STATS, method, "GET");
    } else if (seg_is(seg[3], len[3], "export.csv")) {
        route_set(rt, R_EXPORT, LPM_EP_EXPORT, method, "GET");
    } else if (seg_is(seg[3], len[3], "exports")) {
        route_set(rt, R_EXPORTS, LPM_EP_EXPORTS, method, "POST");
    }
}

static int auth_ok(const lpm_server_t *s, struct MHD_Connection *c)
{
    const char *key = header(c, "x-api-key");
    size_t i, n;
    unsigned char diff = 0;
    if (!key)
        return 0;
    n = strlen(key);
    if (n != s->api_key_len)
        return 0;
    for (i = 0; i < n; i++)
        diff |= (unsigned char)(key[i] ^ s->api_key[i]);
    return diff == 0;
}

static int is_blank(const lpm_buf_t *b)
{
    size_t i;
    for (i = 0; i < b->len; i++) {
        char ch = b->data[i];
        if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
            return 0;
    }
    return 1;
}

static void create_run(lpm_server_t *s, struct MHD_Connection *c, const req_ctx_t *rc,
                       size_t aud, int dry, reply_t *r, const meta_t *m)
{
    char run_type[32];
    const char *idem = header(c, "Idempotency-Key");
    run_t snap, *run = NULL;
    size_t i;
    int status = 201;

    if (rc->too_large) {
        error_reply(r, m, 413, "PAYLOAD_TOO_LARGE", "request body is larger than 65536 bytes");
        return;
    }
    if (!is_blank(&rc->body)) {
        int k = lpm_json_member(rc->body.data, rc->body.len, "runType", run_type, sizeof(run_type));
        if (k == LPM_JSON_INVALID) {
            error_reply(r, m, 400, "INVALID_JSON", "request body is not valid JSON");
            return;
        }
        if (k == LPM_JSON_NOT_OBJECT) {
            error_reply(r, m, 400, "INVALID_BODY", "request body must be a JSON object");
            return;
        }
        if (k == LPM_JSON_NOT_STRING || (k == LPM_JSON_FOUND && strcmp(run_type, "manual") != 0)) {
            param_error(r, m, "runType", "runType must be \"manual\"");
            return;
        }
    }
    if (idem) {
        size_t chars = lpm_utf8_len(idem, strlen(idem));
        if (chars == 0 || chars > MAX_IDEM_CHARS) {
            param_error(r, m, "Idempotency-Key", "Idempotency-Key must be 1 to 120 characters");
            return;
        }
    }

    pthread_mutex_lock(&s->mu);
    if (idem) {
        for (i = 0; i < s->nruns; i++) {
            if (s->runs[i]->aud == aud && s->runs[i]->idem && strcmp(s->runs[i]->idem, idem) == 0) {
                run = s->runs[i];
                break;
            }
        }
    }
    if (run) {
        run_refresh(s, run, lpm_mono_ms());
        snap = *run;
        status = 200;
    } else if (dry) {
        /* a faulted request acts on nothing: show what would have been made */
        run_init(s, &snap, aud, s->run_seq + 1);
        snap.idem = (char *)(uintptr_t)idem;
    } else {
        if (s->nruns == s->caprun) {
            size_t cap = s->caprun ? s->caprun * 2 : 16;
            run_t **grown = realloc(s->runs, cap * sizeof(*grown));
            if (grown) {
                s->runs = grown;
                s->caprun = cap;
            }
        }
        if (s->nruns < s->caprun)
            run = malloc(sizeof(*run));
        if (run) {
            run_init(s, run, aud, ++s->run_seq);
            if (idem) {
                run->idem = strdup(idem);
                if (!run->idem) {
                    free(run);
                    run = NULL;
                }
            }
        }
        if (!run) {
            pthread_mutex_unlock(&s->mu);
            error_reply(r, m, 500, "INTERNAL_ERROR", "out of memory");
            return;
        }
        s->runs[s->nruns++] = run;
        s->stats.runs_created++;
        if (idem)
            s->stats.idempotency_keys++;
        snap = *run;
    }
    data_begin(r, status);
    run_json(&r->body, s, &snap);
    pthread_mutex_unlock(&s->mu);
    data_end(r, m);
}

static void list_runs(lpm_server_t *s, struct MHD_Connection *c, size_t aud, reply_t *r,
                      const meta_t *m)
{
    uint64_t limit, n = 0;
    int64_t now = lpm_mono_ms();
    size_t i;
    if (!int_param(c, r, m, "limit", 25, 1, 100, "limit must be an integer between 1 and 100",
                   &limit))
        return;
    data_begin(r, 200);
    lpm_buf_addc(&r->body, '[');
    pthread_mutex_lock(&s->mu);
    for (i = s->nruns; i-- > 0 && n < limit;) {
        run_t *run = s->runs[i];
        if (run->aud != aud)
            continue;
        run_refresh(s, run, now);
        if (n++)
            lpm_buf_addc(&r->body, ',');
        run_json(&r->body, s, run);
    }
    pthread_mutex_unlock(&s->mu);
    lpm_buf_addc(&r->body, ']');
    data_end(r, m);
}

/* Finds the run of the audience, refreshes it and copies it to *snap; NULL after a 404. */
static run_t *lookup_run(lpm_server_t *s, const route_t *rt, size_t aud, run_t *snap,
                         reply_t *r, const meta_t *m)
{
    run_t *run;
    pthread_mutex_lock(&s->mu);
    run = find_run(s, rt->run, aud);
    if (run) {
        run_refresh(s, run, lpm_mono_ms());
        *snap = *run;
    }
    pthread_mutex_unlock(&s->mu);
    if (!run)
        error_reply(r, m, 404, "RUN_NOT_FOUND", "run not found");
    return run;
}

static void get_run(lpm_server_t *s, const route_t *rt, size_t aud, reply_t *r, const meta_t *m)
{
    run_t snap;
    if (!lookup_run(s, rt, aud, &snap, r, m))
        return;
    data_begin(r, 200);
    run_json(&r->body, s, &snap);
    data_end(r, m);
}

static void cancel_run(lpm_server_t *s, const route_t *rt, size_t aud, reply_t *r,
                       const meta_t *m)
{
    run_t *run, snap;
    int cancelled = 0;
    pthread_mutex_lock(&s->mu);
    run = find_run(s, rt->run, aud);
    if (run) {
        run_refresh(s, run, lpm_mono_ms());
        if (run->status == RS_QUEUED) {
            run->status = RS_CANCELLED;
            run->cancelled = run->updated = lpm_wall_ms();
            cancelled = 1;
        }
        snap = *run;
    }
    pthread_mutex_unlock(&s->mu);
    if (!run) {
        error_reply(r, m, 404, "RUN_NOT_FOUND", "run not found");
    } else if (cancelled) {
        data_begin(r, 200);
        run_json(&r->body, s, &snap);
        data_end(r, m);
    } else {
        char msg[96];
        snprintf(msg, sizeof(msg), "only a queued run can be cancelled; this run is %s",
                 status_names[snap.status]);
        error_begin(r, 409, "RUN_NOT_CANCELLABLE", msg);
        LPM_LIT(&r->body, ",\"run\":{\"id\":\"");
        lpm_buf_add(&r->body, snap.id, 36);
        LPM_LIT(&r->body, "\",\"status\":\"");
        lpm_buf_adds(&r->body, status_names[snap.status]);
        LPM_LIT(&r->body, "\"}");
        error_end(r, m);
    }
}

static void pending_reply(reply_t *r, const run_t *snap)
{
    LPM_LIT(&r->body, "\"state\":\"");
    lpm_buf_adds(&r->body, status_names[snap->status]);
    LPM_LIT(&r->body, "\"");
}

/* Appends the data object of a results page (pending or completed). */
static void results_data(lpm_buf_t *b, const run_t *snap, uint64_t offset, uint64_t limit)
{
    uint64_t total = snap->status == RS_COMPLETED ? (uint64_t)snap->nrows : 0, count, i;
    lpm_person_t person;
    count = offset < total ? total - offset : 0;
    if (count > limit)
        count = limit;
    lpm_buf_reserve(b, (size_t)count * ROW_JSON_GUESS + 1024);
    LPM_LIT(b, "{\"run\":");
    run_json_short(b, snap);
    lpm_buf_addc(b, ',');
    if (snap->status != RS_COMPLETED) {
        LPM_LIT(b, "\"state\":\"");
        lpm_buf_adds(b, status_names[snap->status]);
        LPM_LIT(b, "\",");
    }
    LPM_LIT(b, "\"results\":[");
    for (i = 0; i < count && !b->oom; i++) {
        if (i)
            lpm_buf_addc(b, ',');
        lpm_person_make(&snap->rows, offset + i, &person);
        lpm_person_json(b, &snap->rows, &person);
    }
    LPM_LIT(b, "],\"total\":");
    lpm_buf_adduint(b, total);
    LPM_LIT(b, ",\"limit\":");
    lpm_buf_adduint(b, limit);
    LPM_LIT(b, ",\"offset\":");
    lpm_buf_adduint(b, offset);
    lpm_buf_addc(b, '}');
}

static void results(lpm_server_t *s, struct MHD_Connection *c, const route_t *rt, size_t aud,
                    reply_t *r, const meta_t *m)
{
    uint64_t limit, offset;
    run_t snap;
    if (!int_param(c, r, m, "limit", 100, 1, 500, "limit must be an integer between 1 and 500",
                   &limit))
        return;
    if (!int_param(c, r, m, "offset", 0, 0, (uint64_t)INT64_MAX,
                   "offset must be an integer >= 0", &offset))
        return;
    if (!lookup_run(s, rt, aud, &snap, r, m))
        return;
    if (snap.status == RS_FAILED || snap.status == RS_CANCELLED) {
        run_conflict(r, m, s, &snap);
        return;
    }
    data_begin(r, snap.status == RS_COMPLETED ? 200 : 202);
    results_data(&r->body, &snap, offset, limit);
    data_end(r, m);
}

static void run_stats(lpm_server_t *s, const route_t *rt, size_t aud, reply_t *r,
                      const meta_t *m)
{
    run_t snap, *run;
    const char *json;
    size_t len;
    if (!(run = lookup_run(s, rt, aud, &snap, r, m)))
        return;
    if (snap.status == RS_FAILED || snap.status == RS_CANCELLED) {
        run_conflict(r, m, s, &snap);
        return;
    }
    if (snap.status != RS_COMPLETED) {
        data_begin(r, 202);
        LPM_LIT(&r->body, "{\"run\":");
        run_json_stats(&r->body, s, &snap);
        lpm_buf_addc(&r->body, ',');
        pending_reply(r, &snap);
        LPM_LIT(&r->body, ",\"stats\":null}");
        data_end(r, m);
        return;
    }
    if (!snap.stats_json) {
        /* computed once per run, outside the lock; the first result stored wins */
        lpm_buf_t b;
        lpm_buf_init(&b, 4096);
        lpm_people_stats(&b, &snap.rows, (uint64_t)snap.nrows);
        if (b.oom) {
            lpm_buf_free(&b);
            error_reply(r, m, 500, "INTERNAL_ERROR", "out of memory");
            return;
        }
        pthread_mutex_lock(&s->mu);
        if (!run->stats_json) {
            run->stats_json = b.data;
            run->stats_len = b.len;
            b.data = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        lpm_buf_free(&b);
    }
    pthread_mutex_lock(&s->mu);
    json = run->stats_json;
    len = run->stats_len;
    pthread_mutex_unlock(&s->mu);
    data_begin(r, 200);
    LPM_LIT(&r->body, "{\"run\":");
    run_json_stats(&r->body, s, &snap);
    LPM_LIT(&r->body, ",\"stats\":");
    lpm_buf_add(&r->body, json, len);
    lpm_buf_addc(&r->body, '}');
    data_end(r, m);
}

/* ===== AUDIENCES (read-only) ===== */

static const char *audience_status(const audience_t *a)
{
    return a->a.status ? a->a.status : "active";
}

/* The Audience object (§3.2). lastRefreshedAt: the newest completed run's end. */
static void audience_json(lpm_buf_t *b, lpm_server_t *s, size_t aud)
{
    const audience_t *a = &s->auds[aud];
    int64_t created = s->started_wall - 30 * (int64_t)DAY_MS + (int64_t)aud * 3600000;
    int64_t refreshed = 0, now = lpm_mono_ms();
    size_t i;
    char name[32];
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->nruns; i++) {
        run_t *run = s->runs[i];
        if (run->aud != aud)
            continue;
        run_refresh(s, run, now);
        if (run->status == RS_COMPLETED && run->finished > refreshed)
            refreshed = run->finished;
    }
    pthread_mutex_unlock(&s->mu);
    snprintf(name, sizeof(name), "Audience %u", (unsigned)(aud + 1));
    LPM_LIT(b, "{\"id\":\"");
    lpm_buf_add(b, a->a.id, 36);
    LPM_LIT(b, "\",\"organizationId\":\"");
    lpm_buf_add(b, s->org_id, 36);
    LPM_LIT(b, "\",\"name\":");
    lpm_json_strz(b, a->a.name ? a->a.name : name);
    LPM_LIT(b, ",\"status\":");
    lpm_json_strz(b, audience_status(a));
    LPM_LIT(b, ",\"accessType\":\"paid\",\"dailyRefreshEnabled\":");
    if (strcmp(audience_status(a), "active") == 0)
        LPM_LIT(b, "true");
    else
        LPM_LIT(b, "false");
    LPM_LIT(b, ",\"audienceSize\":");
    lpm_buf_addint(b, a->a.rows);
    LPM_LIT(b, ",\"lastRefreshedAt\":");
    json_time(b, refreshed);
    LPM_LIT(b, ",\"createdAt\":");
    json_time(b, created);
    LPM_LIT(b, ",\"updatedAt\":");
    json_time(b, refreshed ? refreshed : created);
    lpm_buf_addc(b, '}');
}

/* GET /v1/intent/audiences?status=&limit= (limit 1-100, default 50), in creation order. */
static void list_audiences(lpm_server_t *s, struct MHD_Connection *c, reply_t *r,
                           const meta_t *m)
{
    const char *status = NULL;
    uint64_t limit, n = 0;
    size_t i;
    if (query_param(c, "status", &status) &&
        (!status || (strcmp(status, "draft") != 0 && strcmp(status, "active") != 0 &&
                     strcmp(status, "paused") != 0))) {
        param_error(r, m, "status", "status must be draft, active or paused");
        return;
    }
    if (!int_param(c, r, m, "limit", 50, 1, 100, "limit must be an integer between 1 and 100",
                   &limit))
        return;
    data_begin(r, 200);
    lpm_buf_addc(&r->body, '[');
    for (i = 0; i < s->naud && n < limit; i++) {
        if (status && strcmp(status, audience_status(&s->auds[i])) != 0)
            continue;
        if (n++)
            lpm_buf_addc(&r->body, ',');
        audience_json(&r->body, s, i);
    }
    lpm_buf_addc(&r->body, ']');
    data_end(r, m);
}

/* ===== STORED EXPORTS ===== */

/* The signature that the storage listener expects for a run's export. */
static void export_sig(const lpm_server_t *s, const run_t *run, char out[17])
{
    lpm_hex64(out, lpm_mix64(s->seed ^ lpm_mix64(run->rows.key ^ 0x657870ULL)));
}

/* The storage URL of a completed run's CSV. */
static void export_location(const lpm_server_t *s, const run_t *run, char *out, size_t n)
{
    char sig[17];
    export_sig(s, run, sig);
    snprintf(out, n, "http://127.0.0.1:%d/exports/%s.csv?sig=%s", s->storage_port, run->id, sig);
}

/* { export, downloadUrl, downloadUrlExpiresAt, downloadUrlTtlSeconds } (§3.4). */
static void export_json(lpm_buf_t *b, const lpm_server_t *s, const run_t *run)
{
    const audience_t *a = &s->auds[run->aud];
    int64_t now = lpm_wall_ms();
    char url[200], fname[48];
    export_location(s, run, url, sizeof(url));
    snprintf(fname, sizeof(fname), "%s.csv", run->id);
    LPM_LIT(b, "{\"export\":{\"id\":\"");
    lpm_buf_add(b, run->export_id, 36);
    LPM_LIT(b, "\",\"organizationId\":\"");
    lpm_buf_add(b, s->org_id, 36);
    LPM_LIT(b, "\",\"audienceId\":\"");
    lpm_buf_add(b, a->a.id, 36);
    LPM_LIT(b, "\",\"runId\":\"");
    lpm_buf_add(b, run->id, 36);
    LPM_LIT(b, "\",\"exportType\":\"csv\",\"status\":\"completed\","
               "\"storageProvider\":\"mock\",\"contentType\":\"text/csv\",\"rowCount\":");
    lpm_buf_addint(b, run->nrows < s->export_cap ? run->nrows : s->export_cap);
    LPM_LIT(b, ",\"fileName\":");
    lpm_json_strz(b, fname);
    LPM_LIT(b, ",\"completedAt\":");
    json_time(b, run->export_created);
    LPM_LIT(b, ",\"expiresAt\":");
    json_time(b, run->export_created + 7 * (int64_t)DAY_MS);
    LPM_LIT(b, ",\"createdAt\":");
    json_time(b, run->export_created);
    LPM_LIT(b, ",\"updatedAt\":");
    json_time(b, run->export_created);
    LPM_LIT(b, "},\"downloadUrl\":");
    lpm_json_strz(b, url);
    LPM_LIT(b, ",\"downloadUrlExpiresAt\":");
    json_time(b, now + 3600000);
    LPM_LIT(b, ",\"downloadUrlTtlSeconds\":3600}");
}

/* POST .../exports: 201 with a new stored export, 200 with the one already stored; 202
 * while the run is pending, 409 when it failed or was cancelled. */
static void create_export(lpm_server_t *s, const route_t *rt, size_t aud, reply_t *r,
                          const meta_t *m)
{
    run_t *run, snap;
    int created = 0;
    pthread_mutex_lock(&s->mu);
    run = find_run(s, rt->run, aud);
    if (run) {
        run_refresh(s, run, lpm_mono_ms());
        if (run->status == RS_COMPLETED && !run->export_id[0]) {
            lpm_uuid_from(run->export_id, lpm_mix64(run->rows.key ^ 0x6578706f7274ULL),
                          lpm_mix64(s->seed ^ run->rows.key));
            run->export_created = lpm_wall_ms();
            created = 1;
        }
        snap = *run;
    }
    pthread_mutex_unlock(&s->mu);
    if (!run) {
        error_reply(r, m, 404, "RUN_NOT_FOUND", "run not found");
    } else if (snap.status == RS_FAILED || snap.status == RS_CANCELLED) {
        run_conflict(r, m, s, &snap);
    } else if (snap.status != RS_COMPLETED) {
        data_begin(r, 202);
        LPM_LIT(&r->body, "{\"run\":");
        run_json_short(&r->body, &snap);
        lpm_buf_addc(&r->body, ',');
        pending_reply(r, &snap);
        lpm_buf_addc(&r->body, '}');
        data_end(r, m);
    } else {
        data_begin(r, created ? 201 : 200);
        export_json(&r->body, s, &snap);
        data_end(r, m);
    }
}

/* GET .../exports/{exportId}: the stored export with a fresh URL; 404 EXPORT_NOT_FOUND. */
static void get_export(lpm_server_t *s, const route_t *rt, size_t aud, reply_t *r,
                       const meta_t *m)
{
    run_t snap;
    if (!lpm_is_uuid(rt->exp, rt->exp_len)) {
        param_error(r, m, "exportId", "export id must be a UUID");
        return;
    }
    if (!lookup_run(s, rt, aud, &snap, r, m))
        return;
    if (!snap.export_id[0] || rt->exp_len != 36 || strncasecmp(snap.export_id, rt->exp, 36) != 0) {
        error_reply(r, m, 404, "EXPORT_NOT_FOUND", "export not found");
        return;
    }
    data_begin(r, 200);
    export_json(&r->body, s, &snap);
    data_end(r, m);
}

static void export_csv(lpm_server_t *s, const route_t *rt, size_t aud, reply_t *r,
                       const meta_t *m)
{
    run_t snap;
    char location[200];
    if (!lookup_run(s, rt, aud, &snap, r, m))
        return;
    if (snap.status == RS_FAILED || snap.status == RS_CANCELLED) {
        run_conflict(r, m, s, &snap);
        return;
    }
    if (snap.status != RS_COMPLETED) {
        data_begin(r, 202);
        LPM_LIT(&r->body, "{\"run\":");
        run_json_short(&r->body, &snap);
        lpm_buf_addc(&r->body, ',');
        pending_reply(r, &snap);
        lpm_buf_addc(&r->body, '}');
        data_end(r, m);
        return;
    }
    export_location(s, &snap, location, sizeof(location));
    data_begin(r, 302);
    LPM_LIT(&r->body, "{\"url\":");
    lpm_json_strz(&r->body, location);
    lpm_buf_addc(&r->body, '}');
    data_end(r, m);
    add_header(r, "Location", location);
}

static size_t find_audience(const lpm_server_t *s, const char *id)
{
    size_t i;
    for (i = 0; i < s->naud; i++) {
        if (strncasecmp(s->auds[i].a.id, id, 36) == 0)
            return i;
    }
    return (size_t)-1;
}

static void dispatch(lpm_server_t *s, struct MHD_Connection *c, const route_t *rt,
                     const req_ctx_t *rc, int dry, reply_t *r, const meta_t *m)
{
    size_t aud;
    if (rt->kind == R_AUDIENCES) {
        list_audiences(s, c, r, m);
        return;
    }
    if (!lpm_is_uuid(rt->aud, rt->aud_len)) {
        param_error(r, m, "id", "audience id must be a UUID");
        return;
    }
    aud = find_audience(s, rt->aud);
    if (aud == (size_t)-1) {
        error_reply(r, m, 404, "AUDIENCE_NOT_FOUND", "audience not found");
        return;
    }
    if (rt->kind == R_AUDIENCE) {
        data_begin(r, 200);
        audience_json(&r->body, s, aud);
        data_end(r, m);
        return;
    }
    if (rt->kind == R_RUNS) {
        if (rt->ep == LPM_EP_CREATE_RUN)
            create_run(s, c, rc, aud, dry, r, m);
        else
            list_runs(s, c, aud, r, m);
        return;
    }
    if (!lpm_is_uuid(rt->run, rt->run_len)) {
        param_error(r, m, "runId", "run id must be a UUID");
        return;
    }
    switch (rt->kind) {
    case R_RUN:
        if (rt->ep == LPM_EP_CANCEL_RUN)
            cancel_run(s, rt, aud, r, m);
        else
            get_run(s, rt, aud, r, m);
        break;
    case R_RESULTS:
        results(s, c, rt, aud, r, m);
        break;
    case R_STATS:
        run_stats(s, rt, aud, r, m);
        break;
    case R_EXPORTS:
        create_export(s, rt, aud, r, m);
        break;
    case R_EXPORT_ONE:
        get_export(s, rt, aud, r, m);
        break;
    default:
        export_csv(s, rt, aud, r, m);
        break;
    }
}

/* ===== SENDING ===== */

static void free_data(void *p)
{
    free(p);
}

/* A body that promises `len` bytes (Content-Length) but ends with an error at `cut`. */
typedef struct {
    char *data;
    size_t len, cut;
} drop_t;

static ssize_t drop_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    drop_t *d = cls;
    size_t n;
    if (pos >= d->cut)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    n = d->cut - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, d->data + pos, n);
    return (ssize_t)n;
}

static void drop_free(void *cls)
{
    drop_t *d = cls;
    free(d->data);
    free(d);
}

/* A CSV export streamed in chunks of rows (chunked transfer encoding). */
typedef struct {
    lpm_rows_t rows;
    uint64_t next, end;
    lpm_buf_t buf;
    size_t off;
    int header_done;
} csv_t;

static ssize_t csv_read(void *cls, uint64_t pos, char *out, size_t max)
{
    csv_t *x = cls;
    size_t n;
    lpm_person_t p;
    (void)pos;
    if (x->off >= x->buf.len) {
        int k;
        x->buf.len = 0;
        x->off = 0;
        if (!x->header_done) {
            lpm_person_csv_header(&x->buf);
            x->header_done = 1;
        } else if (x->next < x->end) {
            for (k = 0; k < CSV_CHUNK_ROWS && x->next < x->end; k++) {
                lpm_person_make(&x->rows, x->next++, &p);
                lpm_person_csv(&x->buf, &p);
            }
        } else {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (x->buf.oom)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    n = x->buf.len - x->off;
    if (n > max)
        n = max;
    memcpy(out, x->buf.data + x->off, n);
    x->off += n;
    return (ssize_t)n;
}

static void csv_free(void *cls)
{
    csv_t *x = cls;
    lpm_buf_free(&x->buf);
    free(x);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, reply_t *r, int gz, const meta_t *m)
{
    static const char oom_body[] =
        "{\"error\":{\"code\":\"INTERNAL_ERROR\",\"message\":\"out of memory\"}}";
    struct MHD_Response *resp = NULL;
    enum MHD_Result ret;
    int i, gzipped = 0;

    if (r->body.oom) {
        lpm_buf_free(&r->body);
        gzipped = 0;
        r->status = 500;
        r->nextra = 0;
        resp = MHD_create_response_from_buffer(sizeof(oom_body) - 1, (void *)(uintptr_t)oom_body,
                                               MHD_RESPMEM_PERSISTENT);
    } else if (r->csv) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, csv_read, r->csv,
                                                 csv_free);
        if (!resp)
            csv_free(r->csv);
        r->csv = NULL;
    } else {
        if (gz && r->json && r->body.len > 0) {
            lpm_buf_t z;
            if (gzip_buf(r->body.data, r->body.len, &z)) {
                lpm_buf_free(&r->body);
                r->body = z;
                gzipped = 1;
            }
        }
        if (r->fault == LPM_F_DROP && r->body.len > 0) {
            drop_t *d = malloc(sizeof(*d));
            if (d) {
                d->data = r->body.data;
                d->len = r->body.len;
                d->cut = r->body.len / 2;
                r->body.data = NULL;
                resp = MHD_create_response_from_callback(d->len, 4096, drop_read, d, drop_free);
                if (!resp)
                    drop_free(d);
            }
        } else if (r->body.len > 0) {
            resp = MHD_create_response_from_buffer_with_free_callback(r->body.len, r->body.data,
                                                                       free_data);
            if (resp)
                r->body.data = NULL;
        } else {
            resp = MHD_create_response_from_buffer(0, (void *)(uintptr_t)"", MHD_RESPMEM_PERSISTENT);
        }
        lpm_buf_free(&r->body);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->ctype);
    MHD_add_response_header(resp, "x-request-id", m->rid);
    if (r->json)
        MHD_add_response_header(resp, "Vary", "Accept-Encoding");
    if (gzipped)
        MHD_add_response_header(resp, "Content-Encoding", "gzip");
    for (i = 0; i < r->nextra; i++)
        MHD_add_response_header(resp, r->hname[i], r->hvalue[i]);
    ret = MHD_queue_response(c, (unsigned int)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void count_request(lpm_server_t *s, int ep, int status)
{
    if (status < 0 || status >= LPM_MAX_STATUS)
        status = 0;
    pthread_mutex_lock(&s->mu);
    s->stats.requests[ep][status]++;
    pthread_mutex_unlock(&s->mu);
}

/* Collects the request body; returns 1 once the whole request has arrived. */
static int collect(void **con_cls, const char *upload, size_t *upload_size, enum MHD_Result *ret)
{
    req_ctx_t *rc = *con_cls;
    *ret = MHD_YES;
    if (!rc) {
        rc = calloc(1, sizeof(*rc));
        if (!rc) {
            *ret = MHD_NO;
            return 0;
        }
        *con_cls = rc;
        return 0;
    }
    if (*upload_size) {
        if (!rc->too_large) {
            if (rc->body.len + *upload_size > MAX_BODY)
                rc->too_large = 1;
            else
                lpm_buf_add(&rc->body, upload, *upload_size);
        }
        *upload_size = 0;
        return 0;
    }
    return 1;
}

static enum MHD_Result api_access(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    lpm_server_t *s = cls;
    enum MHD_Result ret;
    reply_t r;
    meta_t m;
    route_t rt;
    int64_t latency, retry_after;
    int gz, fault = -1;
    (void)version;

    if (!collect(con_cls, upload, upload_size, &ret))
        return ret;
    reply_init(&r);
    meta_init(s, &m);
    route(url, method, &rt);
    pthread_mutex_lock(&s->mu);
    latency = s->latency_ms;
    gz = s->gzip;
    retry_after = s->faults.retry_after;
    pthread_mutex_unlock(&s->mu);
    gz = gz && accepts_gzip(header(c, "Accept-Encoding"));

    if (!auth_ok(s, c)) {
        error_reply(&r, &m, 401, "UNAUTHORIZED", "missing or invalid API key (x-api-key header)");
    } else if (rt.kind == R_NONE) {
        error_reply(&r, &m, 404, "NOT_FOUND", "no such endpoint");
    } else if (!rt.allowed) {
        error_reply(&r, &m, 405, "METHOD_NOT_ALLOWED", "method not allowed on this endpoint");
        add_header(&r, "Allow", rt.allow);
    } else {
        if (rt.ep == LPM_EP_CREATE_RUN || rt.ep == LPM_EP_LIST_RUNS ||
            rt.ep == LPM_EP_RESULTS || rt.ep == LPM_EP_STATS) {
            uint64_t fp = fingerprint(c, method, url);
            pthread_mutex_lock(&s->mu);
            fault = decide_fault(s, fp);
            pthread_mutex_unlock(&s->mu);
        }
        if (fault >= 0 && fault != LPM_F_DROP && fault != LPM_F_TRUNCATE) {
            fault_reply(&r, &m, fault, retry_after);
        } else {
            r.fault = fault;
            dispatch(s, c, &rt, (const req_ctx_t *)*con_cls, fault >= 0, &r, &m);
            if (fault == LPM_F_TRUNCATE && !r.body.oom) {
                r.status = 200;
                r.body.len /= 2;
            }
        }
    }
    while (latency > 0 && !__atomic_load_n(&s->stopping, __ATOMIC_RELAXED)) {
        lpm_sleep_ms(latency < 20 ? latency : 20);
        latency -= 20;
    }
    count_request(s, rt.ep, r.status);
    return send_reply(c, &r, gz, &m);
}

/* ===== STORAGE LISTENER (export.csv redirect target) ===== */

static enum MHD_Result storage_access(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload, size_t *upload_size, void **con_cls)
{
    static const char prefix[] = "/exports/";
    lpm_server_t *s = cls;
    enum MHD_Result ret;
    reply_t r;
    meta_t m;
    run_t *run = NULL, snap;
    const char *sig;
    char want[17], cap[24];
    size_t n = strlen(url);
    (void)version;

    if (!collect(con_cls, upload, upload_size, &ret))
        return ret;
    reply_init(&r);
    meta_init(s, &m);
    pthread_mutex_lock(&s->mu);
    s->stats.redirect_requests++;
    if (header(c, "x-api-key"))
        s->stats.redirect_key_seen = 1;
    pthread_mutex_unlock(&s->mu);

    if (strcmp(method, "GET") != 0) {
        error_reply(&r, &m, 405, "METHOD_NOT_ALLOWED", "method not allowed");
        add_header(&r, "Allow", "GET");
        return send_reply(c, &r, 0, &m);
    }
    if (n != sizeof(prefix) - 1 + 36 + 4 || strncmp(url, prefix, sizeof(prefix) - 1) != 0 ||
        strcmp(url + n - 4, ".csv") != 0) {
        error_reply(&r, &m, 404, "NOT_FOUND", "no such export");
        return send_reply(c, &r, 0, &m);
    }
    pthread_mutex_lock(&s->mu);
    run = find_run(s, url + sizeof(prefix) - 1, (size_t)-1);
    if (run) {
        run_refresh(s, run, lpm_mono_ms());
        snap = *run;
    }
    pthread_mutex_unlock(&s->mu);
    if (!run) {
        error_reply(&r, &m, 404, "NOT_FOUND", "no such export");
        return send_reply(c, &r, 0, &m);
    }
    export_sig(s, &snap, want);
    sig = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "sig");
    if (!sig || strcmp(sig, want) != 0) {
        error_reply(&r, &m, 403, "FORBIDDEN", "missing or invalid signature");
        return send_reply(c, &r, 0, &m);
    }
    if (snap.status != RS_COMPLETED) {
        error_reply(&r, &m, 409, "EXPORT_NOT_READY", "the run has no export");
        return send_reply(c, &r, 0, &m);
    }
    {
        csv_t *x = calloc(1, sizeof(*x));
        if (!x) {
            error_reply(&r, &m, 500, "INTERNAL_ERROR", "out of memory");
            return send_reply(c, &r, 0, &m);
        }
        x->rows = snap.rows;
        x->end = (uint64_t)(snap.nrows < s->export_cap ? snap.nrows : s->export_cap);
        lpm_buf_init(&x->buf, 0);
        r.csv = x;
        r.status = 200;
        r.ctype = "text/csv; charset=utf-8";
        snprintf(cap, sizeof(cap), "%lld", (long long)s->export_cap);
        add_header(&r, "X-Export-Row-Cap", cap);
        add_header(&r, "X-ClickHouse-Query-Id", m.rid);
        {
            char disp[80];
            snprintf(disp, sizeof(disp), "attachment; filename=\"%s.csv\"", snap.id);
            add_header(&r, "Content-Disposition", disp);
        }
    }
    return send_reply(c, &r, 0, &m);
}

/* ===== DAEMONS ===== */

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_ctx_t *rc = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (rc) {
        lpm_buf_free(&rc->body);
        free(rc);
        *con_cls = NULL;
    }
}

static void connection_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
                              enum MHD_ConnectionNotificationCode toe)
{
    lpm_server_t *s = cls;
    (void)c;
    (void)socket_ctx;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        pthread_mutex_lock(&s->mu);
        s->stats.connections++;
        pthread_mutex_unlock(&s->mu);
    }
}

static void connection_ignore(void *cls, struct MHD_Connection *c, void **socket_ctx,
                              enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)c;
    (void)socket_ctx;
    (void)toe;
}

/* Checks that 127.0.0.1:port can be bound, for a clear message before MHD tries. */
static int port_free(int port, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "listen: socket: %s", strerror(errno));
        return 0;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(err, errlen, "listen: cannot bind 127.0.0.1:%d: %s", port, strerror(errno));
        close(fd);
        return 0;
    }
    close(fd);
    return 1;
}

static struct MHD_Daemon *start_daemon(int port, int threads, MHD_AccessHandlerCallback handler,
                                       lpm_server_t *s, int *bound)
{
    struct sockaddr_in sa;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, (uint16_t)port, NULL, NULL, handler, s,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(threads > 1 ? threads : 0),
                         MHD_OPTION_NOTIFY_COMPLETED, request_done, s,
                         MHD_OPTION_NOTIFY_CONNECTION,
                         handler == api_access ? connection_notify : connection_ignore, s,
                         MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
                         MHD_OPTION_END);
    if (!d)
        return NULL;
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = info ? (int)info->port : port;
    return d;
}

/* ===== LIFECYCLE ===== */

static void server_free(lpm_server_t *s)
{
    size_t i;
    for (i = 0; i < s->nruns; i++) {
        free(s->runs[i]->idem);
        free(s->runs[i]->stats_json);
        free(s->runs[i]);
    }
    free(s->runs);
    for (i = 0; i < s->naud; i++) {
        free(s->auds[i].a.fail_code);
        free(s->auds[i].a.fail_message);
        free(s->auds[i].a.name);
        free(s->auds[i].a.status);
    }
    free(s->auds);
    free(s->api_key);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

lpm_server_t *lpm_server_start(const lpm_config_t *cfg, char *err, size_t errlen)
{
    lpm_server_t *s = calloc(1, sizeof(*s));
    size_t i, k;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->seed = cfg->seed;
    s->instance = lpm_mix64((uint64_t)lpm_wall_ms() ^ lpm_mix64((uint64_t)(uintptr_t)s));
    s->queued_ms = cfg->queued_ms;
    s->running_ms = cfg->running_ms;
    s->latency_ms = cfg->latency_ms;
    s->gzip = cfg->gzip;
    s->faults = cfg->faults;
    s->export_cap = cfg->export_cap;
    s->started_wall = lpm_wall_ms();
    lpm_uuid_from(s->org_id, lpm_mix64(s->seed ^ 0x6f7267ULL), lpm_mix64(s->seed ^ 0x6f7267aULL));
    s->api_key = malloc(cfg->api_key_len + 1);
    s->auds = calloc(cfg->naudiences ? cfg->naudiences : 1, sizeof(*s->auds));
    if (!s->api_key || !s->auds)
        goto oom;
    memcpy(s->api_key, cfg->api_key, cfg->api_key_len);
    s->api_key[cfg->api_key_len] = '\0';
    s->api_key_len = cfg->api_key_len;
    for (i = 0; i < cfg->naudiences; i++) {
        audience_t *a = &s->auds[i];
        const lpm_audience_t *src = &cfg->audiences[i];
        uint64_t words[4];
        lpm_buf_t hb;
        s->naud++;
        for (k = 0; k < 36; k++) {
            char ch = src->id[k];
            a->a.id[k] = (char)((ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch);
        }
        a->a.id[36] = '\0';
        a->a.rows = src->rows;
        if ((src->name && !(a->a.name = strdup(src->name))) ||
            (src->status && !(a->a.status = strdup(src->status))))
            goto oom;
        if (src->fail_code) {
            a->a.fail_code = strdup(src->fail_code);
            a->a.fail_message = strdup(src->fail_message ? src->fail_message : "run failed");
            if (!a->a.fail_code || !a->a.fail_message)
                goto oom;
        }
        a->key = lpm_mix64(lpm_fnv(LPM_FNV_INIT, a->a.id, 36));
        for (k = 0; k < 4; k++)
            words[k] = lpm_mix64(a->key ^ lpm_mix64(s->seed ^ (0x636f6e6669670000ULL + k)));
        hb.data = a->config_hash;
        hb.len = 0;
        hb.cap = 64;
        hb.oom = 0;
        lpm_buf_addhex(&hb, words, 32);
        a->config_hash[64] = '\0';
    }
    if (cfg->port != 0 && !port_free(cfg->port, err, errlen)) {
        server_free(s);
        return NULL;
    }
    /* the export listener first: the API handlers read its port */
    s->storage = start_daemon(0, 2, storage_access, s, &s->storage_port);
    if (!s->storage) {
        snprintf(err, errlen, "listen: libmicrohttpd could not start the export listener");
        server_free(s);
        return NULL;
    }
    s->api = start_daemon(cfg->port, cfg->threads, api_access, s, &s->port);
    if (!s->api) {
        MHD_stop_daemon(s->storage);
        snprintf(err, errlen, "listen: libmicrohttpd could not start on 127.0.0.1:%d", cfg->port);
        server_free(s);
        return NULL;
    }
    return s;

oom:
    snprintf(err, errlen, "out of memory");
    server_free(s);
    return NULL;
}

void lpm_server_stop(lpm_server_t *s)
{
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELAXED);
    if (s->api) {
        MHD_stop_daemon(s->api);
        s->api = NULL;
    }
    if (s->storage) {
        MHD_stop_daemon(s->storage);
        s->storage = NULL;
    }
}

void lpm_server_free(lpm_server_t *s)
{
    if (!s)
        return;
    lpm_server_stop(s);
    server_free(s);
}

int lpm_server_running(const lpm_server_t *s)
{
    return s->api != NULL;
}

int lpm_server_port(const lpm_server_t *s)
{
    return s->port;
}

int lpm_server_redirect_port(const lpm_server_t *s)
{
    return s->storage_port;
}

void lpm_server_stats(lpm_server_t *s, lpm_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

void lpm_server_reset_stats(lpm_server_t *s)
{
    pthread_mutex_lock(&s->mu);
    memset(&s->stats, 0, sizeof(s->stats));
    pthread_mutex_unlock(&s->mu);
}

void lpm_server_configure(lpm_server_t *s, const lpm_update_t *u)
{
    pthread_mutex_lock(&s->mu);
    if (u->set_faults) {
        s->faults = u->faults;
        s->fault_tick = 0;
        s->fault_seq = 0;
    }
    if (u->set_latency)
        s->latency_ms = u->latency_ms;
    if (u->set_queued)
        s->queued_ms = u->queued_ms;
    if (u->set_running)
        s->running_ms = u->running_ms;
    if (u->set_gzip)
        s->gzip = u->gzip;
    pthread_mutex_unlock(&s->mu);
}

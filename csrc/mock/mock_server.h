/*
 * mock_server.h: the fake Leadpipe API server (libmicrohttpd), as plain C.
 *
 * Two loopback listeners run on their own threads: the API, and a second "storage"
 * origin that export.csv redirects to. All shared state (runs, idempotency keys, fault
 * fingerprints, counters) sits behind one mutex; row generation runs outside it. Nothing
 * here knows about Lua: mock_lua.c is the binding.
 *
 * License: MIT (see the repository).
 */
#ifndef LEADPIPE_MOCK_SERVER_H
#define LEADPIPE_MOCK_SERVER_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/* ===== CONFIGURATION ===== */

enum {
    LPM_F_429,
    LPM_F_429_DATE,
    LPM_F_500,
    LPM_F_502,
    LPM_F_503,
    LPM_F_DROP,
    LPM_F_TRUNCATE,
    LPM_F_COUNT
};
/* "429", "429_date", "500", "502", "503", "drop", "truncate" */
extern const char *const lpm_fault_names[LPM_F_COUNT];

/* Most handler threads the `threads` option may ask for. */
#define LPM_MAX_THREADS 64

typedef struct {
    int enabled;
    double rate;          /* probability per eligible request, when every == 0 */
    uint64_t every;       /* fault every Nth eligible request (0: use rate) */
    uint64_t seed;
    int kinds[LPM_F_COUNT];
    int nkinds;
    int64_t retry_after;  /* seconds, for 429 and 429_date */
    uint64_t count;       /* at most this many faults, then none (0: no limit) */
    double short_pages;   /* fraction of completed results pages answered short (legal,
                             never empty; decided per run, offset and limit) */
} lpm_faults_t;

typedef struct {
    char id[37];          /* lower-case UUID */
    int64_t rows;
    char *fail_code;      /* NULL: runs complete; else they fail with this code */
    char *fail_message;
    char *name;           /* NULL: "Audience N" */
    char *status;         /* NULL: "active"; else draft, active or paused */
    int64_t daily_runs;   /* daily runs made at start, the last one a day ago */
} lpm_audience_t;

typedef struct {
    int port;                 /* 0: any free port */
    const char *api_key;
    size_t api_key_len;
    uint64_t seed;
    const lpm_audience_t *audiences; /* copied by lpm_server_start */
    size_t naudiences;
    int64_t queued_ms, running_ms, latency_ms;
    int gzip;
    lpm_faults_t faults;
    int threads;              /* 0: a thread per connection; at most LPM_MAX_THREADS */
    int64_t export_cap;       /* rows per export.csv */
} lpm_config_t;

/* A partial change while running: each part applies when its flag is set. */
typedef struct {
    int set_faults, set_latency, set_queued, set_running, set_gzip;
    lpm_faults_t faults;
    int64_t latency_ms, queued_ms, running_ms;
    int gzip;
} lpm_update_t;

/* ===== STATISTICS ===== */

enum {
    LPM_EP_CREATE_RUN,
    LPM_EP_LIST_RUNS,
    LPM_EP_CANCEL_RUN,
    LPM_EP_RESULTS,
    LPM_EP_STATS,
    LPM_EP_EXPORT,
    LPM_EP_AUDIENCES,  /* GET /audiences and /audiences/{id} */
    LPM_EP_EXPORTS,    /* POST .../exports and GET .../exports/{exportId} */
    LPM_EP_OTHER,
    LPM_EP_COUNT
};
extern const char *const lpm_endpoint_names[LPM_EP_COUNT];

#define LPM_MAX_STATUS 600

typedef struct {
    uint64_t requests[LPM_EP_COUNT][LPM_MAX_STATUS];
    uint64_t connections;
    uint64_t runs_created;
    uint64_t idempotency_keys;
    uint64_t faults;
    uint64_t faults_by_kind[LPM_F_COUNT];
    uint64_t redirect_requests;
    int redirect_key_seen;
    /* The rate gate a client must keep: 429s sent with a Retry-After, and the API requests
     * that arrived while one of them held (from when it went out until its Retry-After
     * seconds had passed), counted once each: any of them, and those that arrived more
     * than LPM_RA_GRACE_MS after it went out (a request already on its way then is not the
     * client's fault). */
    uint64_t rate_limited;
    uint64_t during_retry_after_any;
    uint64_t during_retry_after;
} lpm_stats_t;

/* ===== LIFECYCLE ===== */

typedef struct lpm_server lpm_server_t;

/* Starts both listeners on 127.0.0.1. Returns NULL and a message in err on failure. */
lpm_server_t *lpm_server_start(const lpm_config_t *cfg, char *err, size_t errlen);
/* Stops listening, closes connections, joins the threads. Idempotent. */
void lpm_server_stop(lpm_server_t *s);
/* Stops (if needed) and frees everything. */
void lpm_server_free(lpm_server_t *s);
int lpm_server_running(const lpm_server_t *s);
int lpm_server_port(const lpm_server_t *s);
int lpm_server_redirect_port(const lpm_server_t *s);
void lpm_server_stats(lpm_server_t *s, lpm_stats_t *out);
void lpm_server_reset_stats(lpm_server_t *s);
void lpm_server_configure(lpm_server_t *s, const lpm_update_t *u);

#pragma GCC visibility pop

#endif

/*
 * mock_internal.h: what the files of the fake API share: limits, the server, run and
 * reply structures, and the functions one file offers the others (all lpm_, hidden).
 * Locking: every field of lpm_server marked "under mu" is read and written with mu held.
 *
 * License: MIT (see the repository).
 */
#ifndef LEADPIPE_MOCK_INTERNAL_H
#define LEADPIPE_MOCK_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <microhttpd.h>

#include "mock_buf.h"
#include "mock_people.h"
#include "mock_server.h"

#pragma GCC visibility push(hidden)

#define LPM_MAX_BODY (64 * 1024)       /* request bodies beyond this get 413 */
#define LPM_MAX_IDEM_CHARS 120
#define LPM_FAULT_MEMORY 4096          /* fingerprints of faulted requests kept */
#define LPM_RA_MEMORY 64               /* 429s whose Retry-After window is remembered */
#define LPM_RA_GRACE_MS 50             /* see lpm_stats_t.during_retry_after */
#define LPM_ROW_JSON_GUESS 1100        /* bytes reserved per row of a page */
#define LPM_CSV_CHUNK_ROWS 256
#define LPM_STREAM_BLOCK (64 * 1024)   /* bytes libmicrohttpd asks a streamed body for at once */
#define LPM_CONFIG_HASH_LEN 64         /* hex digits of an audience's configHash (256 bits) */
#define LPM_CONNECTION_TIMEOUT_S 60u
#define LPM_DAY_MS 86400000

enum { LPM_RS_QUEUED, LPM_RS_RUNNING, LPM_RS_COMPLETED, LPM_RS_FAILED, LPM_RS_CANCELLED };
extern const char *const lpm_status_names[];

typedef struct {
    lpm_audience_t a;          /* owned copies of the strings */
    uint64_t key;
    uint64_t people;           /* lpm_rows_t.people of its runs */
    uint64_t days;             /* runs made so far (the last run's day); under mu */
    char config_hash[LPM_CONFIG_HASH_LEN + 1];
} lpm_aud_t;

typedef struct {
    char id[37];
    size_t aud;
    uint64_t ordinal;
    lpm_rows_t rows;
    int64_t nrows, candidates;
    int status, attempts;
    int daily;                 /* runType "daily" (made at start) rather than "manual" */
    char *idem;                /* owned; NULL without Idempotency-Key */
    int64_t created_mono, started_mono;
    int64_t created, started, finished, cancelled, updated; /* wall ms, 0: none */
    char *stats_json;          /* owned; computed once when first asked */
    size_t stats_len;
    char export_id[37];        /* "" until POST .../exports stores one */
    int64_t export_created;    /* wall ms */
} lpm_run_t;

struct lpm_server {
    pthread_mutex_t mu;
    struct MHD_Daemon *api, *storage;
    int port, storage_port;
    char *api_key;
    size_t api_key_len;
    uint64_t seed;
    char org_id[37];
    lpm_aud_t *auds;
    size_t naud;
    int64_t export_cap;
    int64_t started_wall;      /* audiences were "created" a month before this */
    /* under mu */
    lpm_run_t **runs;
    size_t nruns, caprun;
    uint64_t run_seq;
    int64_t queued_ms, running_ms, latency_ms;
    int gzip;
    lpm_faults_t faults;
    uint64_t fault_tick, fault_seq;
    uint64_t faulted[LPM_FAULT_MEMORY];
    size_t nfaulted, faulted_next;
    lpm_stats_t stats;
    int64_t ra_sent[LPM_RA_MEMORY];  /* monotonic ms a 429 went out (0: none) ... */
    int64_t ra_until[LPM_RA_MEMORY]; /* ... and when its Retry-After ended */
    size_t ra_next;
    uint64_t instance;         /* request ids differ between servers */
    int stopping;              /* atomic: cuts latency sleeps short on stop() */
    /* atomic */
    uint64_t request_seq;
};

typedef struct {
    lpm_buf_t body;
    int too_large;
} lpm_req_t;

typedef struct {
    char ts[25];
    char rid[21];   /* "req_" + 16 hex */
} lpm_meta_t;

#define LPM_MAX_EXTRA 6

typedef struct {
    int status;
    lpm_buf_t body;
    const char *ctype;
    int json;                 /* a JSON envelope: may be gzipped */
    int fault;                /* -1, or LPM_F_DROP / LPM_F_TRUNCATE */
    int nextra;
    char hname[LPM_MAX_EXTRA][32];
    char hvalue[LPM_MAX_EXTRA][320];
    /* A body made as it is sent (the CSV export) instead of `body`: stream_read(stream, pos,
     * out, max) fills out (libmicrohttpd's content reader), stream_free(stream) ends it.
     * The reply owns stream from the moment it is set. */
    void *stream;
    ssize_t (*stream_read)(void *stream, uint64_t pos, char *out, size_t max);
    void (*stream_free)(void *stream);
} lpm_reply_t;

enum {
    LPM_R_NONE, LPM_R_AUDIENCES, LPM_R_AUDIENCE, LPM_R_RUNS, LPM_R_RUN, LPM_R_RESULTS, LPM_R_STATS, LPM_R_EXPORT,
    LPM_R_EXPORTS, LPM_R_EXPORT_ONE
};

typedef struct {
    int kind, ep, allowed;
    const char *allow;
    const char *aud, *run, *exp;
    size_t aud_len, run_len, exp_len;
} lpm_route_t;


/* mock_reply.c */
void lpm_reply_init(lpm_reply_t *r);
void lpm_add_header(lpm_reply_t *r, const char *name, const char *value);
void lpm_meta_init(lpm_server_t *s, lpm_meta_t *m);
void lpm_data_begin(lpm_reply_t *r, int status);
void lpm_data_end(lpm_reply_t *r, const lpm_meta_t *m);
void lpm_error_begin(lpm_reply_t *r, int status, const char *code, const char *message);
void lpm_error_end(lpm_reply_t *r, const lpm_meta_t *m);
void lpm_error_reply(lpm_reply_t *r, const lpm_meta_t *m, int status, const char *code,
                     const char *message);
void lpm_param_error(lpm_reply_t *r, const lpm_meta_t *m, const char *param, const char *message);
void lpm_json_time(lpm_buf_t *b, int64_t wall);
const char *lpm_header(struct MHD_Connection *c, const char *name);
int lpm_query_param(struct MHD_Connection *c, const char *name, const char **v);
int lpm_int_param(struct MHD_Connection *c, lpm_reply_t *r, const lpm_meta_t *m, const char *name,
                  uint64_t def, uint64_t lo, uint64_t hi, const char *message, uint64_t *out);
int lpm_accepts_gzip(const char *h);
enum MHD_Result lpm_send_reply(struct MHD_Connection *c, lpm_reply_t *r, int gz, const lpm_meta_t *m);
void lpm_count_request(lpm_server_t *s, int ep, int status);
int lpm_collect(void **con_cls, const char *upload, size_t *upload_size, enum MHD_Result *ret);
/* mock_runs.c */
void lpm_run_refresh(lpm_server_t *s, lpm_run_t *run, int64_t now);
int lpm_daily_runs(lpm_server_t *s, size_t aud, int64_t count);
lpm_run_t *lpm_find_run(lpm_server_t *s, const char *id, size_t aud_or_all);
void lpm_run_json(lpm_buf_t *b, const lpm_server_t *s, const lpm_run_t *run);
void lpm_run_json_short(lpm_buf_t *b, const lpm_run_t *run);
void lpm_run_json_stats(lpm_buf_t *b, const lpm_server_t *s, const lpm_run_t *run);
void lpm_run_conflict(lpm_reply_t *r, const lpm_meta_t *m, const lpm_server_t *s, const lpm_run_t *run);
void lpm_create_run(lpm_server_t *s, struct MHD_Connection *c, const lpm_req_t *rc,
                    size_t aud, int dry, lpm_reply_t *r, const lpm_meta_t *m);
void lpm_list_runs(lpm_server_t *s, struct MHD_Connection *c, size_t aud, lpm_reply_t *r,
                   const lpm_meta_t *m);
lpm_run_t *lpm_lookup_run(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_run_t *snap,
                      lpm_reply_t *r, const lpm_meta_t *m);
void lpm_get_run(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r, const lpm_meta_t *m);
void lpm_cancel_run(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r,
                    const lpm_meta_t *m);
void lpm_pending_reply(lpm_reply_t *r, const lpm_run_t *snap);
int lpm_run_unavailable(const lpm_server_t *s, lpm_reply_t *r, const lpm_meta_t *m,
                        const lpm_run_t *snap);
/* mock_results.c */
void lpm_results(lpm_server_t *s, struct MHD_Connection *c, const lpm_route_t *rt, size_t aud,
                 lpm_reply_t *r, const lpm_meta_t *m);
void lpm_run_stats(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r,
                   const lpm_meta_t *m);
/* mock_exports.c */
void lpm_audience_json(lpm_buf_t *b, lpm_server_t *s, size_t aud);
void lpm_list_audiences(lpm_server_t *s, struct MHD_Connection *c, lpm_reply_t *r,
                        const lpm_meta_t *m);
void lpm_create_export(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r,
                       const lpm_meta_t *m);
void lpm_get_export(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r,
                    const lpm_meta_t *m);
void lpm_export_csv(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r,
                    const lpm_meta_t *m);
enum MHD_Result lpm_storage_access(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version,
                                   const char *upload, size_t *upload_size, void **con_cls);
/* mock_faults.c */
uint64_t lpm_fingerprint(struct MHD_Connection *c, const char *method, const char *url);
int lpm_decide_fault(lpm_server_t *s, uint64_t fp);
void lpm_fault_reply(lpm_reply_t *r, const lpm_meta_t *m, int kind, int64_t retry_after);
void lpm_note_arrival(lpm_server_t *s);
void lpm_note_rate_limit(lpm_server_t *s, int kind, int64_t retry_after);

#pragma GCC visibility pop

#endif

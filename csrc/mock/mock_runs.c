/*
 * mock_runs.c: the runs of the fake API: their lifecycle (queued -> running -> completed
 * or failed, moved along by time), their JSON, and the handlers of POST/GET .../runs,
 * GET/DELETE .../runs/{runId}.
 *
 * License: MIT (see the repository).
 */
#include "mock_internal.h"

#include "mock_json.h"

const char *const lpm_status_names[] = {
    "queued", "running", "completed", "failed", "cancelled",
};


/* ===== RUNS (callers hold mu) ===== */

void lpm_run_refresh(lpm_server_t *s, lpm_run_t *run, int64_t now)
{
    if (run->status == LPM_RS_QUEUED && now - run->created_mono >= s->queued_ms) {
        run->status = LPM_RS_RUNNING;
        run->started_mono = run->created_mono + s->queued_ms;
        run->started = run->created + s->queued_ms;
        run->updated = run->started;
        run->attempts = 1;
    }
    if (run->status == LPM_RS_RUNNING && now - run->started_mono >= s->running_ms) {
        run->finished = run->started + s->running_ms;
        run->updated = run->finished;
        run->status = s->auds[run->aud].a.fail_code ? LPM_RS_FAILED : LPM_RS_COMPLETED;
    }
}

/* A new queued run, the audience's day `day` (see mock_people.h), created now. */
static void run_init(lpm_server_t *s, lpm_run_t *run, size_t aud, uint64_t ordinal, uint64_t day)
{
    const lpm_aud_t *a = &s->auds[aud];
    int64_t now = lpm_wall_ms();
    memset(run, 0, sizeof(*run));
    run->aud = aud;
    run->ordinal = ordinal;
    /* distinct tags keep the derived values (ids, keys, hashes) unrelated */
    lpm_uuid_from(run->id, lpm_mix64(s->seed ^ lpm_mix64(0x72756e6964000000ULL ^ ordinal)),
                  lpm_mix64(a->key ^ lpm_mix64(0x72756e6964ff0000ULL ^ ordinal)));
    run->rows.key = lpm_mix64(s->seed ^ lpm_mix64(a->key ^ lpm_mix64(0x726f777300000000ULL ^ ordinal)));
    lpm_iso_date(run->rows.data_date, now - LPM_DAY_MS);
    run->nrows = a->a.rows;
    lpm_rows_init(&run->rows, a->people, day, (uint64_t)run->nrows);
    run->candidates = run->nrows +
                      (int64_t)(lpm_mix64(run->rows.key) % (uint64_t)(2 * run->nrows + 50));
    run->status = LPM_RS_QUEUED;
    run->created_mono = lpm_mono_ms();
    run->created = now;
    run->updated = now;
}

/* Appends a run to the server's list (callers hold mu, or run before the listeners);
 * returns it, or NULL when out of memory. */
static lpm_run_t *add_run(lpm_server_t *s, size_t aud)
{
    lpm_run_t *run = NULL;
    if (s->nruns == s->caprun) {
        size_t cap = s->caprun ? s->caprun * 2 : 16;
        lpm_run_t **grown = realloc(s->runs, cap * sizeof(*grown));
        if (grown) {
            s->runs = grown;
            s->caprun = cap;
        }
    }
    if (s->nruns < s->caprun)
        run = malloc(sizeof(*run));
    if (run) {
        run_init(s, run, aud, ++s->run_seq, ++s->auds[aud].days);
        s->runs[s->nruns++] = run;
    }
    return run;
}

/* The audience's daily runs, made at start: count runs of runType "daily", finished (or
 * failed, for a failing audience), created a day apart, the last one a day ago. Returns 0
 * when out of memory. */
int lpm_daily_runs(lpm_server_t *s, size_t aud, int64_t count)
{
    int64_t k;
    for (k = 0; k < count; k++) {
        lpm_run_t *run = add_run(s, aud);
        int64_t created = s->started_wall - (count - k) * (int64_t)LPM_DAY_MS;
        if (!run)
            return 0;
        run->daily = 1;
        run->created = created;
        run->started = created + 60000;
        run->finished = run->updated = created + 120000;
        run->attempts = 1;
        run->status = s->auds[aud].a.fail_code ? LPM_RS_FAILED : LPM_RS_COMPLETED;
        lpm_iso_date(run->rows.data_date, created - LPM_DAY_MS);
    }
    return 1;
}

lpm_run_t *lpm_find_run(lpm_server_t *s, const char *id, size_t aud_or_all)
{
    size_t i;
    for (i = 0; i < s->nruns; i++) {
        lpm_run_t *run = s->runs[i];
        if (strncasecmp(run->id, id, 36) == 0 && (aud_or_all == (size_t)-1 || run->aud == aud_or_all))
            return run;
    }
    return NULL;
}

/* ===== JSON OF RUNS ===== */

static int64_t result_count(const lpm_run_t *run)
{
    return run->status == LPM_RS_COMPLETED ? run->nrows : 0;
}

static int64_t candidate_count(const lpm_run_t *run)
{
    return run->status == LPM_RS_COMPLETED ? run->candidates : 0;
}

/* The Run object. */
void lpm_run_json(lpm_buf_t *b, const lpm_server_t *s, const lpm_run_t *run)
{
    const lpm_aud_t *a = &s->auds[run->aud];
    int failed = run->status == LPM_RS_FAILED, done = run->status == LPM_RS_COMPLETED;
    LPM_LIT(b, "{\"id\":\"");
    lpm_buf_add(b, run->id, 36);
    LPM_LIT(b, "\",\"audienceId\":\"");
    lpm_buf_add(b, a->a.id, 36);
    LPM_LIT(b, "\",\"organizationId\":\"");
    lpm_buf_add(b, s->org_id, 36);
    LPM_LIT(b, "\",\"status\":\"");
    lpm_buf_adds(b, lpm_status_names[run->status]);
    LPM_LIT(b, "\",\"runType\":\"");
    lpm_buf_adds(b, run->daily ? "daily" : "manual");
    LPM_LIT(b, "\",\"configHash\":\"");
    lpm_buf_add(b, a->config_hash, LPM_CONFIG_HASH_LEN);
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
    lpm_json_time(b, run->started);
    LPM_LIT(b, ",\"completedAt\":");
    lpm_json_time(b, done ? run->finished : 0);
    LPM_LIT(b, ",\"cancelledAt\":");
    lpm_json_time(b, run->cancelled);
    LPM_LIT(b, ",\"createdAt\":");
    lpm_json_time(b, run->created);
    LPM_LIT(b, ",\"updatedAt\":");
    lpm_json_time(b, run->updated);
    lpm_buf_addc(b, '}');
}

/* The short run of the results endpoint. */
void lpm_run_json_short(lpm_buf_t *b, const lpm_run_t *run)
{
    LPM_LIT(b, "{\"id\":\"");
    lpm_buf_add(b, run->id, 36);
    LPM_LIT(b, "\",\"status\":\"");
    lpm_buf_adds(b, lpm_status_names[run->status]);
    LPM_LIT(b, "\",\"runType\":\"");
    lpm_buf_adds(b, run->daily ? "daily" : "manual");
    LPM_LIT(b, "\",\"candidateCount\":");
    lpm_buf_addint(b, candidate_count(run));
    LPM_LIT(b, ",\"resultCount\":");
    lpm_buf_addint(b, result_count(run));
    if (run->status == LPM_RS_COMPLETED) {
        LPM_LIT(b, ",\"completedAt\":");
        lpm_json_time(b, run->finished);
    }
    lpm_buf_addc(b, '}');
}

/* The run of the stats endpoint. */
void lpm_run_json_stats(lpm_buf_t *b, const lpm_server_t *s, const lpm_run_t *run)
{
    LPM_LIT(b, "{\"id\":\"");
    lpm_buf_add(b, run->id, 36);
    LPM_LIT(b, "\",\"audienceId\":\"");
    lpm_buf_add(b, s->auds[run->aud].a.id, 36);
    LPM_LIT(b, "\",\"status\":\"");
    lpm_buf_adds(b, lpm_status_names[run->status]);
    LPM_LIT(b, "\",\"runType\":\"");
    lpm_buf_adds(b, run->daily ? "daily" : "manual");
    LPM_LIT(b, "\",\"resultCount\":");
    lpm_buf_addint(b, result_count(run));
    LPM_LIT(b, ",\"completedAt\":");
    lpm_json_time(b, run->status == LPM_RS_COMPLETED ? run->finished : 0);
    lpm_buf_addc(b, '}');
}

/* 409 for a run that cannot serve results, stats or an export. */
void lpm_run_conflict(lpm_reply_t *r, const lpm_meta_t *m, const lpm_server_t *s, const lpm_run_t *run)
{
    const lpm_aud_t *a = &s->auds[run->aud];
    int failed = run->status == LPM_RS_FAILED;
    char msg[300];
    if (failed)
        snprintf(msg, sizeof(msg), "run failed: %s", a->a.fail_message ? a->a.fail_message : "");
    else
        snprintf(msg, sizeof(msg), "run was cancelled");
    lpm_error_begin(r, 409, failed ? "RUN_FAILED" : "RUN_CANCELLED", msg);
    LPM_LIT(&r->body, ",\"run\":{\"id\":\"");
    lpm_buf_add(&r->body, run->id, 36);
    LPM_LIT(&r->body, "\",\"status\":\"");
    lpm_buf_adds(&r->body, lpm_status_names[run->status]);
    LPM_LIT(&r->body, "\",\"errorCode\":");
    lpm_json_strz(&r->body, failed ? a->a.fail_code : NULL);
    LPM_LIT(&r->body, ",\"errorMessage\":");
    lpm_json_strz(&r->body, failed ? a->a.fail_message : NULL);
    LPM_LIT(&r->body, "}");
    lpm_error_end(r, m);
}

/* ===== HANDLERS ===== */

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

void lpm_create_run(lpm_server_t *s, struct MHD_Connection *c, const lpm_req_t *rc,
                    size_t aud, int dry, lpm_reply_t *r, const lpm_meta_t *m)
{
    char run_type[32];
    const char *idem = lpm_header(c, "Idempotency-Key");
    lpm_run_t snap, *run = NULL;
    size_t i;
    int status = 201;

    if (rc->too_large) {
        lpm_error_reply(r, m, 413, "PAYLOAD_TOO_LARGE", "request body is larger than 65536 bytes");
        return;
    }
    if (!is_blank(&rc->body)) {
        int k = lpm_json_member(rc->body.data, rc->body.len, "runType", run_type, sizeof(run_type));
        if (k == LPM_JSON_INVALID) {
            lpm_error_reply(r, m, 400, "INVALID_JSON", "request body is not valid JSON");
            return;
        }
        if (k == LPM_JSON_NOT_OBJECT) {
            lpm_error_reply(r, m, 400, "INVALID_BODY", "request body must be a JSON object");
            return;
        }
        if (k == LPM_JSON_NOT_STRING || (k == LPM_JSON_FOUND && strcmp(run_type, "manual") != 0)) {
            lpm_param_error(r, m, "runType", "runType must be \"manual\"");
            return;
        }
    }
    if (idem) {
        size_t chars = lpm_utf8_len(idem, strlen(idem));
        if (chars == 0 || chars > LPM_MAX_IDEM_CHARS) {
            lpm_param_error(r, m, "Idempotency-Key", "Idempotency-Key must be 1 to 120 characters");
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
        lpm_run_refresh(s, run, lpm_mono_ms());
        snap = *run;
        status = 200;
    } else if (dry) {
        /* a faulted request acts on nothing: show what would have been made */
        run_init(s, &snap, aud, s->run_seq + 1, s->auds[aud].days + 1);
        snap.idem = (char *)(uintptr_t)idem;
    } else {
        char *key = idem ? strdup(idem) : NULL;
        if (!idem || key)
            run = add_run(s, aud);
        if (!run) {
            pthread_mutex_unlock(&s->mu);
            free(key);
            lpm_error_reply(r, m, 500, "INTERNAL_ERROR", "out of memory");
            return;
        }
        run->idem = key;
        s->stats.runs_created++;
        if (idem)
            s->stats.idempotency_keys++;
        snap = *run;
    }
    lpm_data_begin(r, status);
    lpm_run_json(&r->body, s, &snap);
    pthread_mutex_unlock(&s->mu);
    lpm_data_end(r, m);
}

void lpm_list_runs(lpm_server_t *s, struct MHD_Connection *c, size_t aud, lpm_reply_t *r,
                   const lpm_meta_t *m)
{
    uint64_t limit, n = 0;
    int64_t now = lpm_mono_ms();
    size_t i;
    if (!lpm_int_param(c, r, m, "limit", 25, 1, 100, "limit must be an integer between 1 and 100",
                   &limit))
        return;
    lpm_data_begin(r, 200);
    lpm_buf_addc(&r->body, '[');
    pthread_mutex_lock(&s->mu);
    for (i = s->nruns; i-- > 0 && n < limit;) {
        lpm_run_t *run = s->runs[i];
        if (run->aud != aud)
            continue;
        lpm_run_refresh(s, run, now);
        if (n++)
            lpm_buf_addc(&r->body, ',');
        lpm_run_json(&r->body, s, run);
    }
    pthread_mutex_unlock(&s->mu);
    lpm_buf_addc(&r->body, ']');
    lpm_data_end(r, m);
}

/* Finds the run of the audience, refreshes it and copies it to *snap; NULL after a 404. */
lpm_run_t *lpm_lookup_run(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_run_t *snap,
                      lpm_reply_t *r, const lpm_meta_t *m)
{
    lpm_run_t *run;
    pthread_mutex_lock(&s->mu);
    run = lpm_find_run(s, rt->run, aud);
    if (run) {
        lpm_run_refresh(s, run, lpm_mono_ms());
        *snap = *run;
    }
    pthread_mutex_unlock(&s->mu);
    if (!run)
        lpm_error_reply(r, m, 404, "RUN_NOT_FOUND", "run not found");
    return run;
}

void lpm_get_run(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r, const lpm_meta_t *m)
{
    lpm_run_t snap;
    if (!lpm_lookup_run(s, rt, aud, &snap, r, m))
        return;
    lpm_data_begin(r, 200);
    lpm_run_json(&r->body, s, &snap);
    lpm_data_end(r, m);
}

void lpm_cancel_run(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r,
                    const lpm_meta_t *m)
{
    lpm_run_t *run, snap;
    int cancelled = 0;
    pthread_mutex_lock(&s->mu);
    run = lpm_find_run(s, rt->run, aud);
    if (run) {
        lpm_run_refresh(s, run, lpm_mono_ms());
        if (run->status == LPM_RS_QUEUED) {
            run->status = LPM_RS_CANCELLED;
            run->cancelled = run->updated = lpm_wall_ms();
            cancelled = 1;
        }
        snap = *run;
    }
    pthread_mutex_unlock(&s->mu);
    if (!run) {
        lpm_error_reply(r, m, 404, "RUN_NOT_FOUND", "run not found");
    } else if (cancelled) {
        lpm_data_begin(r, 200);
        lpm_run_json(&r->body, s, &snap);
        lpm_data_end(r, m);
    } else {
        char msg[96];
        snprintf(msg, sizeof(msg), "only a queued run can be cancelled; this run is %s",
                 lpm_status_names[snap.status]);
        lpm_error_begin(r, 409, "RUN_NOT_CANCELLABLE", msg);
        LPM_LIT(&r->body, ",\"run\":{\"id\":\"");
        lpm_buf_add(&r->body, snap.id, 36);
        LPM_LIT(&r->body, "\",\"status\":\"");
        lpm_buf_adds(&r->body, lpm_status_names[snap.status]);
        LPM_LIT(&r->body, "\"}");
        lpm_error_end(r, m);
    }
}

void lpm_pending_reply(lpm_reply_t *r, const lpm_run_t *snap)
{
    LPM_LIT(&r->body, "\"state\":\"");
    lpm_buf_adds(&r->body, lpm_status_names[snap->status]);
    LPM_LIT(&r->body, "\"");
}

/* For an endpoint that needs a completed run: fills r with 409 (failed, cancelled) or 202
 * ({"run": the short run, "state": ...}) and returns 1; returns 0 for a completed run. */
int lpm_run_unavailable(const lpm_server_t *s, lpm_reply_t *r, const lpm_meta_t *m,
                        const lpm_run_t *snap)
{
    if (snap->status == LPM_RS_FAILED || snap->status == LPM_RS_CANCELLED) {
        lpm_run_conflict(r, m, s, snap);
        return 1;
    }
    if (snap->status == LPM_RS_COMPLETED)
        return 0;
    lpm_data_begin(r, 202);
    LPM_LIT(&r->body, "{\"run\":");
    lpm_run_json_short(&r->body, snap);
    lpm_buf_addc(&r->body, ',');
    lpm_pending_reply(r, snap);
    lpm_buf_addc(&r->body, '}');
    lpm_data_end(r, m);
    return 1;
}

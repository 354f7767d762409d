/*
 * mock_results.c: the results and stats endpoints of the fake API (pages of people
 * generated from the run's key, the run's stats computed once).
 *
 * License: MIT (see the repository).
 */
#include "mock_internal.h"

/* Rows of a completed page of `count` rows that the "short" fault hands out: a page the
 * draw picks (a `fraction` of them, from the seed, the run, the offset and the limit, so a
 * page asked for again is as short again) gets 1..count-1 rows; the docs allow a page
 * shorter than its limit, never an empty one before total. */
static uint64_t short_count(const lpm_faults_t *f, const lpm_run_t *snap, uint64_t offset,
                            uint64_t limit, uint64_t count)
{
    uint64_t h;
    if (f->short_pages <= 0 || count < 2)
        return count;
    h = lpm_mix64(f->seed ^ lpm_mix64(snap->rows.key ^ lpm_mix64(offset * 1000003u + limit)));
    if ((double)(h >> 11) * (1.0 / 9007199254740992.0) >= f->short_pages)
        return count;
    return 1 + lpm_mix64(h) % (count - 1);
}

/* Appends the data object of a results page (pending or completed). */
static void results_data(lpm_buf_t *b, const lpm_run_t *snap, const lpm_faults_t *f,
                         uint64_t offset, uint64_t limit)
{
    uint64_t total = snap->status == LPM_RS_COMPLETED ? (uint64_t)snap->nrows : 0, count, i;
    lpm_person_t person;
    count = offset < total ? total - offset : 0;
    if (count > limit)
        count = limit;
    count = short_count(f, snap, offset, limit, count);
    lpm_buf_reserve(b, (size_t)count * LPM_ROW_JSON_GUESS + 1024);
    LPM_LIT(b, "{\"run\":");
    lpm_run_json_short(b, snap);
    lpm_buf_addc(b, ',');
    if (snap->status != LPM_RS_COMPLETED) {
        LPM_LIT(b, "\"state\":\"");
        lpm_buf_adds(b, lpm_status_names[snap->status]);
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

void lpm_results(lpm_server_t *s, struct MHD_Connection *c, const lpm_route_t *rt, size_t aud,
                 lpm_reply_t *r, const lpm_meta_t *m)
{
    uint64_t limit, offset;
    lpm_run_t snap;
    lpm_faults_t faults;
    if (!lpm_int_param(c, r, m, "limit", 100, 1, 500, "limit must be an integer between 1 and 500",
                   &limit))
        return;
    if (!lpm_int_param(c, r, m, "offset", 0, 0, (uint64_t)INT64_MAX,
                   "offset must be an integer >= 0", &offset))
        return;
    if (!lpm_lookup_run(s, rt, aud, &snap, r, m))
        return;
    if (snap.status == LPM_RS_FAILED || snap.status == LPM_RS_CANCELLED) {
        lpm_run_conflict(r, m, s, &snap);
        return;
    }
    pthread_mutex_lock(&s->mu);
    faults = s->faults;
    pthread_mutex_unlock(&s->mu);
    lpm_data_begin(r, snap.status == LPM_RS_COMPLETED ? 200 : 202);
    results_data(&r->body, &snap, &faults, offset, limit);
    lpm_data_end(r, m);
}

void lpm_run_stats(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r,
                   const lpm_meta_t *m)
{
    lpm_run_t snap, *run;
    const char *json;
    size_t len;
    if (!(run = lpm_lookup_run(s, rt, aud, &snap, r, m)))
        return;
    if (snap.status == LPM_RS_FAILED || snap.status == LPM_RS_CANCELLED) {
        lpm_run_conflict(r, m, s, &snap);
        return;
    }
    if (snap.status != LPM_RS_COMPLETED) {
        lpm_data_begin(r, 202);
        LPM_LIT(&r->body, "{\"run\":");
        lpm_run_json_stats(&r->body, s, &snap);
        lpm_buf_addc(&r->body, ',');
        lpm_pending_reply(r, &snap);
        LPM_LIT(&r->body, ",\"stats\":null}");
        lpm_data_end(r, m);
        return;
    }
    if (!snap.stats_json) {
        /* computed once per run, outside the lock; the first result stored wins */
        lpm_buf_t b;
        lpm_buf_init(&b, 4096);
        lpm_people_stats(&b, &snap.rows, (uint64_t)snap.nrows);
        if (b.oom) {
            lpm_buf_free(&b);
            lpm_error_reply(r, m, 500, "INTERNAL_ERROR", "out of memory");
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
    lpm_data_begin(r, 200);
    LPM_LIT(&r->body, "{\"run\":");
    lpm_run_json_stats(&r->body, s, &snap);
    LPM_LIT(&r->body, ",\"stats\":");
    lpm_buf_add(&r->body, json, len);
    lpm_buf_addc(&r->body, '}');
    lpm_data_end(r, m);
}


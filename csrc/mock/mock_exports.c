/*
 * mock_exports.c: the fake API's audiences (GET /audiences, /audiences/{id}), exports
 * (export.csv's redirect, stored exports with signed URLs) and the second "storage"
 * listener that serves the CSV (no key needed; it records whether one arrived).
 *
 * License: MIT (see the repository).
 */
#include "mock_internal.h"

/* ===== AUDIENCES (read-only) ===== */

static const char *audience_status(const lpm_aud_t *a)
{
    return a->a.status ? a->a.status : "active";
}

/* The Audience object (§3.2). lastRefreshedAt: the newest completed run's end. */
void lpm_audience_json(lpm_buf_t *b, lpm_server_t *s, size_t aud)
{
    const lpm_aud_t *a = &s->auds[aud];
    int64_t created = s->started_wall - 30 * (int64_t)LPM_DAY_MS + (int64_t)aud * 3600000;
    int64_t refreshed = 0, now = lpm_mono_ms();
    size_t i;
    char name[32];
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->nruns; i++) {
        lpm_run_t *run = s->runs[i];
        if (run->aud != aud)
            continue;
        lpm_run_refresh(s, run, now);
        if (run->status == LPM_RS_COMPLETED && run->finished > refreshed)
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
    lpm_json_time(b, refreshed);
    LPM_LIT(b, ",\"createdAt\":");
    lpm_json_time(b, created);
    LPM_LIT(b, ",\"updatedAt\":");
    lpm_json_time(b, refreshed ? refreshed : created);
    lpm_buf_addc(b, '}');
}

/* GET /v1/intent/audiences?status=&limit= (limit 1-100, default 50), in creation order. */
void lpm_list_audiences(lpm_server_t *s, struct MHD_Connection *c, lpm_reply_t *r,
                        const lpm_meta_t *m)
{
    const char *status = NULL;
    uint64_t limit, n = 0;
    size_t i;
    if (lpm_query_param(c, "status", &status) &&
        (!status || (strcmp(status, "draft") != 0 && strcmp(status, "active") != 0 &&
                     strcmp(status, "paused") != 0))) {
        lpm_param_error(r, m, "status", "status must be draft, active or paused");
        return;
    }
    if (!lpm_int_param(c, r, m, "limit", 50, 1, 100, "limit must be an integer between 1 and 100",
                   &limit))
        return;
    lpm_data_begin(r, 200);
    lpm_buf_addc(&r->body, '[');
    for (i = 0; i < s->naud && n < limit; i++) {
        if (status && strcmp(status, audience_status(&s->auds[i])) != 0)
            continue;
        if (n++)
            lpm_buf_addc(&r->body, ',');
        lpm_audience_json(&r->body, s, i);
    }
    lpm_buf_addc(&r->body, ']');
    lpm_data_end(r, m);
}

/* ===== STORED EXPORTS ===== */

/* The signature that the storage listener expects for a run's export. */
static void export_sig(const lpm_server_t *s, const lpm_run_t *run, char out[17])
{
    lpm_hex64(out, lpm_mix64(s->seed ^ lpm_mix64(run->rows.key ^ 0x657870ULL)));
}

/* The storage URL of a completed run's CSV. */
static void export_location(const lpm_server_t *s, const lpm_run_t *run, char *out, size_t n)
{
    char sig[17];
    export_sig(s, run, sig);
    snprintf(out, n, "http://127.0.0.1:%d/exports/%s.csv?sig=%s", s->storage_port, run->id, sig);
}

/* { export, downloadUrl, downloadUrlExpiresAt, downloadUrlTtlSeconds } (§3.4). */
static void export_json(lpm_buf_t *b, const lpm_server_t *s, const lpm_run_t *run)
{
    const lpm_aud_t *a = &s->auds[run->aud];
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
    lpm_json_time(b, run->export_created);
    LPM_LIT(b, ",\"expiresAt\":");
    lpm_json_time(b, run->export_created + 7 * (int64_t)LPM_DAY_MS);
    LPM_LIT(b, ",\"createdAt\":");
    lpm_json_time(b, run->export_created);
    LPM_LIT(b, ",\"updatedAt\":");
    lpm_json_time(b, run->export_created);
    LPM_LIT(b, "},\"downloadUrl\":");
    lpm_json_strz(b, url);
    LPM_LIT(b, ",\"downloadUrlExpiresAt\":");
    lpm_json_time(b, now + 3600000);
    LPM_LIT(b, ",\"downloadUrlTtlSeconds\":3600}");
}

/* POST .../exports: 201 with a new stored export, 200 with the one already stored; 202
 * while the run is pending, 409 when it failed or was cancelled. */
void lpm_create_export(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r,
                       const lpm_meta_t *m)
{
    lpm_run_t *run, snap;
    int created = 0;
    pthread_mutex_lock(&s->mu);
    run = lpm_find_run(s, rt->run, aud);
    if (run) {
        lpm_run_refresh(s, run, lpm_mono_ms());
        if (run->status == LPM_RS_COMPLETED && !run->export_id[0]) {
            lpm_uuid_from(run->export_id, lpm_mix64(run->rows.key ^ 0x6578706f7274ULL),
                          lpm_mix64(s->seed ^ run->rows.key));
            run->export_created = lpm_wall_ms();
            created = 1;
        }
        snap = *run;
    }
    pthread_mutex_unlock(&s->mu);
    if (!run) {
        lpm_error_reply(r, m, 404, "RUN_NOT_FOUND", "run not found");
    } else if (!lpm_run_unavailable(s, r, m, &snap)) {
        lpm_data_begin(r, created ? 201 : 200);
        export_json(&r->body, s, &snap);
        lpm_data_end(r, m);
    }
}

/* GET .../exports/{exportId}: the stored export with a fresh URL; 404 EXPORT_NOT_FOUND. */
void lpm_get_export(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r,
                    const lpm_meta_t *m)
{
    lpm_run_t snap;
    if (!lpm_is_uuid(rt->exp, rt->exp_len)) {
        lpm_param_error(r, m, "exportId", "export id must be a UUID");
        return;
    }
    if (!lpm_lookup_run(s, rt, aud, &snap, r, m))
        return;
    if (!snap.export_id[0] || rt->exp_len != 36 || strncasecmp(snap.export_id, rt->exp, 36) != 0) {
        lpm_error_reply(r, m, 404, "EXPORT_NOT_FOUND", "export not found");
        return;
    }
    lpm_data_begin(r, 200);
    export_json(&r->body, s, &snap);
    lpm_data_end(r, m);
}

void lpm_export_csv(lpm_server_t *s, const lpm_route_t *rt, size_t aud, lpm_reply_t *r,
                    const lpm_meta_t *m)
{
    lpm_run_t snap;
    char location[200];
    if (!lpm_lookup_run(s, rt, aud, &snap, r, m) || lpm_run_unavailable(s, r, m, &snap))
        return;
    export_location(s, &snap, location, sizeof(location));
    lpm_data_begin(r, 302);
    LPM_LIT(&r->body, "{\"url\":");
    lpm_json_strz(&r->body, location);
    lpm_buf_addc(&r->body, '}');
    lpm_data_end(r, m);
    lpm_add_header(r, "Location", location);
}

/* A CSV export streamed in chunks of rows (chunked transfer encoding). */
typedef struct {
    lpm_rows_t rows;
    uint64_t next, end;
    lpm_buf_t buf;
    size_t off;
    int header_done;
} lpm_csv_t;

static ssize_t csv_read(void *cls, uint64_t pos, char *out, size_t max)
{
    lpm_csv_t *x = cls;
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
            for (k = 0; k < LPM_CSV_CHUNK_ROWS && x->next < x->end; k++) {
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
    lpm_csv_t *x = cls;
    lpm_buf_free(&x->buf);
    free(x);
}

/* ===== STORAGE LISTENER (export.csv redirect target) ===== */

enum MHD_Result lpm_storage_access(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version,
                                   const char *upload, size_t *upload_size, void **con_cls)
{
    static const char prefix[] = "/exports/";
    lpm_server_t *s = cls;
    enum MHD_Result ret;
    lpm_reply_t r;
    lpm_meta_t m;
    lpm_run_t *run = NULL, snap;
    const char *sig;
    char want[17], cap[24];
    size_t n = strlen(url);
    (void)version;

    if (!lpm_collect(con_cls, upload, upload_size, &ret))
        return ret;
    lpm_reply_init(&r);
    lpm_meta_init(s, &m);
    pthread_mutex_lock(&s->mu);
    s->stats.redirect_requests++;
    if (lpm_header(c, "x-api-key"))
        s->stats.redirect_key_seen = 1;
    pthread_mutex_unlock(&s->mu);

    if (strcmp(method, "GET") != 0) {
        lpm_error_reply(&r, &m, 405, "METHOD_NOT_ALLOWED", "method not allowed");
        lpm_add_header(&r, "Allow", "GET");
        return lpm_send_reply(c, &r, 0, &m);
    }
    if (n != sizeof(prefix) - 1 + 36 + 4 || strncmp(url, prefix, sizeof(prefix) - 1) != 0 ||
        strcmp(url + n - 4, ".csv") != 0) {
        lpm_error_reply(&r, &m, 404, "NOT_FOUND", "no such export");
        return lpm_send_reply(c, &r, 0, &m);
    }
    pthread_mutex_lock(&s->mu);
    run = lpm_find_run(s, url + sizeof(prefix) - 1, (size_t)-1);
    if (run) {
        lpm_run_refresh(s, run, lpm_mono_ms());
        snap = *run;
    }
    pthread_mutex_unlock(&s->mu);
    if (!run) {
        lpm_error_reply(&r, &m, 404, "NOT_FOUND", "no such export");
        return lpm_send_reply(c, &r, 0, &m);
    }
    export_sig(s, &snap, want);
    sig = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "sig");
    if (!sig || strcmp(sig, want) != 0) {
        lpm_error_reply(&r, &m, 403, "FORBIDDEN", "missing or invalid signature");
        return lpm_send_reply(c, &r, 0, &m);
    }
    if (snap.status != LPM_RS_COMPLETED) {
        lpm_error_reply(&r, &m, 409, "EXPORT_NOT_READY", "the run has no export");
        return lpm_send_reply(c, &r, 0, &m);
    }
    {
        lpm_csv_t *x = calloc(1, sizeof(*x));
        if (!x) {
            lpm_error_reply(&r, &m, 500, "INTERNAL_ERROR", "out of memory");
            return lpm_send_reply(c, &r, 0, &m);
        }
        x->rows = snap.rows;
        x->end = (uint64_t)(snap.nrows < s->export_cap ? snap.nrows : s->export_cap);
        lpm_buf_init(&x->buf, 0);
        r.stream = x;
        r.stream_read = csv_read;
        r.stream_free = csv_free;
        r.status = 200;
        r.ctype = "text/csv; charset=utf-8";
        snprintf(cap, sizeof(cap), "%lld", (long long)s->export_cap);
        lpm_add_header(&r, "X-Export-Row-Cap", cap);
        lpm_add_header(&r, "X-ClickHouse-Query-Id", m.rid);
        {
            char disp[80];
            snprintf(disp, sizeof(disp), "attachment; filename=\"%s.csv\"", snap.id);
            lpm_add_header(&r, "Content-Disposition", disp);
        }
    }
    return lpm_send_reply(c, &r, 0, &m);
}


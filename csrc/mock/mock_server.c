/*
 * mock_server.c: the fake Leadpipe API on libmicrohttpd (see mock_server.h): routing,
 * auth, dispatch, the listeners and the server's lifecycle. The endpoints live in
 * mock_runs.c, mock_results.c and mock_exports.c; replies in mock_reply.c; faults in
 * mock_faults.c; what they share in mock_internal.h.
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
#include "mock_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

const char *const lpm_fault_names[LPM_F_COUNT] = {
    "429", "429_date", "500", "502", "503", "drop", "truncate",
};

const char *const lpm_endpoint_names[LPM_EP_COUNT] = {
    "create_run", "list_runs", "cancel_run", "results", "stats", "export", "audiences", "exports",
    "other",
};

/* ===== ROUTING AND DISPATCH ===== */

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
static void route_set(lpm_route_t *rt, int kind, int ep, const char *method, const char *allow)
{
    rt->kind = kind;
    rt->ep = ep;
    rt->allow = allow;
    rt->allowed = method_in(allow, method);
    if (!rt->allowed)
        rt->ep = LPM_EP_OTHER;
}

static void route(const char *url, const char *method, lpm_route_t *rt)
{
    static const char prefix[] = "/v1/intent/audiences";
    const char *seg[5], *p;
    size_t len[5];
    int n = 0, post = strcmp(method, "POST") == 0;

    memset(rt, 0, sizeof(*rt));
    rt->kind = LPM_R_NONE;
    rt->ep = LPM_EP_OTHER;
    if (strcmp(url, prefix) == 0) {
        route_set(rt, LPM_R_AUDIENCES, LPM_EP_AUDIENCES, method, "GET");
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
        route_set(rt, LPM_R_AUDIENCE, LPM_EP_AUDIENCES, method, "GET");
        return;
    }
    if (!seg_is(seg[1], len[1], "runs"))
        return;
    if (n == 2) {
        route_set(rt, LPM_R_RUNS, post ? LPM_EP_CREATE_RUN : LPM_EP_LIST_RUNS, method, "GET, POST");
        return;
    }
    rt->run = seg[2];
    rt->run_len = len[2];
    if (n == 3) {
        route_set(rt, LPM_R_RUN, strcmp(method, "DELETE") == 0 ? LPM_EP_CANCEL_RUN : LPM_EP_OTHER,
                  method, "GET, DELETE");
        return;
    }
    if (n == 5) {
        if (!seg_is(seg[3], len[3], "exports"))
            return;
        rt->exp = seg[4];
        rt->exp_len = len[4];
        route_set(rt, LPM_R_EXPORT_ONE, LPM_EP_EXPORTS, method, "GET");
    } else if (seg_is(seg[3], len[3], "results")) {
        route_set(rt, LPM_R_RESULTS, LPM_EP_RESULTS, method, "GET");
    } else if (seg_is(seg[3], len[3], "stats")) {
        route_set(rt, LPM_R_STATS, LPM_EP_STATS, method, "GET");
    } else if (seg_is(seg[3], len[3], "export.csv")) {
        route_set(rt, LPM_R_EXPORT, LPM_EP_EXPORT, method, "GET");
    } else if (seg_is(seg[3], len[3], "exports")) {
        route_set(rt, LPM_R_EXPORTS, LPM_EP_EXPORTS, method, "POST");
    }
}

static int auth_ok(const lpm_server_t *s, struct MHD_Connection *c)
{
    const char *key = lpm_header(c, "x-api-key");
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

static size_t find_audience(const lpm_server_t *s, const char *id)
{
    size_t i;
    for (i = 0; i < s->naud; i++) {
        if (strncasecmp(s->auds[i].a.id, id, 36) == 0)
            return i;
    }
    return (size_t)-1;
}

static void dispatch(lpm_server_t *s, struct MHD_Connection *c, const lpm_route_t *rt,
                     const lpm_req_t *rc, int dry, lpm_reply_t *r, const lpm_meta_t *m)
{
    size_t aud;
    if (rt->kind == LPM_R_AUDIENCES) {
        lpm_list_audiences(s, c, r, m);
        return;
    }
    if (!lpm_is_uuid(rt->aud, rt->aud_len)) {
        lpm_param_error(r, m, "id", "audience id must be a UUID");
        return;
    }
    aud = find_audience(s, rt->aud);
    if (aud == (size_t)-1) {
        lpm_error_reply(r, m, 404, "AUDIENCE_NOT_FOUND", "audience not found");
        return;
    }
    if (rt->kind == LPM_R_AUDIENCE) {
        lpm_data_begin(r, 200);
        lpm_audience_json(&r->body, s, aud);
        lpm_data_end(r, m);
        return;
    }
    if (rt->kind == LPM_R_RUNS) {
        if (rt->ep == LPM_EP_CREATE_RUN)
            lpm_create_run(s, c, rc, aud, dry, r, m);
        else
            lpm_list_runs(s, c, aud, r, m);
        return;
    }
    if (!lpm_is_uuid(rt->run, rt->run_len)) {
        lpm_param_error(r, m, "runId", "run id must be a UUID");
        return;
    }
    switch (rt->kind) {
    case LPM_R_RUN:
        if (rt->ep == LPM_EP_CANCEL_RUN)
            lpm_cancel_run(s, rt, aud, r, m);
        else
            lpm_get_run(s, rt, aud, r, m);
        break;
    case LPM_R_RESULTS:
        lpm_results(s, c, rt, aud, r, m);
        break;
    case LPM_R_STATS:
        lpm_run_stats(s, rt, aud, r, m);
        break;
    case LPM_R_EXPORTS:
        lpm_create_export(s, rt, aud, r, m);
        break;
    case LPM_R_EXPORT_ONE:
        lpm_get_export(s, rt, aud, r, m);
        break;
    default:
        lpm_export_csv(s, rt, aud, r, m);
        break;
    }
}

static enum MHD_Result api_access(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    lpm_server_t *s = cls;
    enum MHD_Result ret;
    lpm_reply_t r;
    lpm_meta_t m;
    lpm_route_t rt;
    int64_t latency, retry_after;
    int gz, fault = -1;
    (void)version;

    if (*con_cls == NULL)
        lpm_note_arrival(s);
    if (!lpm_collect(con_cls, upload, upload_size, &ret))
        return ret;
    lpm_reply_init(&r);
    lpm_meta_init(s, &m);
    route(url, method, &rt);
    pthread_mutex_lock(&s->mu);
    latency = s->latency_ms;
    gz = s->gzip;
    retry_after = s->faults.retry_after;
    pthread_mutex_unlock(&s->mu);
    gz = gz && lpm_accepts_gzip(lpm_header(c, "Accept-Encoding"));

    if (!auth_ok(s, c)) {
        lpm_error_reply(&r, &m, 401, "UNAUTHORIZED", "missing or invalid API key (x-api-key header)");
    } else if (rt.kind == LPM_R_NONE) {
        lpm_error_reply(&r, &m, 404, "NOT_FOUND", "no such endpoint");
    } else if (!rt.allowed) {
        lpm_error_reply(&r, &m, 405, "METHOD_NOT_ALLOWED", "method not allowed on this endpoint");
        lpm_add_header(&r, "Allow", rt.allow);
    } else {
        if (rt.ep == LPM_EP_CREATE_RUN || rt.ep == LPM_EP_LIST_RUNS ||
            rt.ep == LPM_EP_RESULTS || rt.ep == LPM_EP_STATS) {
            uint64_t fp = lpm_fingerprint(c, method, url);
            pthread_mutex_lock(&s->mu);
            fault = lpm_decide_fault(s, fp);
            pthread_mutex_unlock(&s->mu);
        }
        if (fault >= 0 && fault != LPM_F_DROP && fault != LPM_F_TRUNCATE) {
            lpm_fault_reply(&r, &m, fault, retry_after);
        } else {
            r.fault = fault;
            dispatch(s, c, &rt, (const lpm_req_t *)*con_cls, fault >= 0, &r, &m);
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
    lpm_note_rate_limit(s, fault, retry_after);
    lpm_count_request(s, rt.ep, r.status);
    return lpm_send_reply(c, &r, gz, &m);
}

/* ===== DAEMONS ===== */

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    lpm_req_t *rc = *con_cls;
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
    /* threads == 0: a thread per connection, so that one request's added latency never
     * holds up another connection (as on a real network); else a pool of that many. */
    unsigned int flags = threads == 0 ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO_INTERNAL_THREAD
                                      : MHD_USE_AUTO_INTERNAL_THREAD;
    d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handler, s,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(threads > 1 ? threads : 0),
                         MHD_OPTION_NOTIFY_COMPLETED, request_done, s,
                         MHD_OPTION_NOTIFY_CONNECTION,
                         handler == api_access ? connection_notify : connection_ignore, s,
                         MHD_OPTION_CONNECTION_TIMEOUT, LPM_CONNECTION_TIMEOUT_S,
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
        lpm_aud_t *a = &s->auds[i];
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
        a->people = lpm_mix64(s->seed ^ lpm_mix64(a->key ^ 0x70656f706c650000ULL));
        for (k = 0; k < 4; k++)
            words[k] = lpm_mix64(a->key ^ lpm_mix64(s->seed ^ (0x636f6e6669670000ULL + k)));
        hb.data = a->config_hash;
        hb.len = 0;
        hb.cap = LPM_CONFIG_HASH_LEN;
        hb.oom = 0;
        lpm_buf_addhex(&hb, words, 32);
        a->config_hash[LPM_CONFIG_HASH_LEN] = '\0';
    }
    for (i = 0; i < s->naud; i++) {
        if (!lpm_daily_runs(s, i, cfg->audiences[i].daily_runs))
            goto oom;
    }
    if (cfg->port != 0 && !port_free(cfg->port, err, errlen)) {
        server_free(s);
        return NULL;
    }
    /* the export listener first: the API handlers read its port */
    s->storage = start_daemon(0, 2, lpm_storage_access, s, &s->storage_port);
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
    memset(s->ra_sent, 0, sizeof(s->ra_sent));
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

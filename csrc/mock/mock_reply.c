/*
 * mock_reply.c: how the fake API answers: the reply being built (status, JSON body,
 * extra headers), the envelope (data/error + meta), request helpers (headers, query
 * parameters, gzip negotiation) and sending (gzip per response, the "drop" fault's short
 * body, a streamed CSV), plus per-endpoint counting and request-body collection.
 *
 * License: MIT (see the repository).
 */
#include "mock_internal.h"

#include <zlib.h>

void lpm_reply_init(lpm_reply_t *r)
{
    r->status = 500;
    lpm_buf_init(&r->body, 0);
    r->ctype = "application/json";
    r->json = 0;
    r->fault = -1;
    r->nextra = 0;
    r->stream = NULL;
    r->stream_read = NULL;
    r->stream_free = NULL;
}

void lpm_add_header(lpm_reply_t *r, const char *name, const char *value)
{
    if (r->nextra >= LPM_MAX_EXTRA)
        return;
    snprintf(r->hname[r->nextra], sizeof(r->hname[0]), "%s", name);
    snprintf(r->hvalue[r->nextra], sizeof(r->hvalue[0]), "%s", value);
    r->nextra++;
}

void lpm_meta_init(lpm_server_t *s, lpm_meta_t *m)
{
    uint64_t n = __atomic_add_fetch(&s->request_seq, 1, __ATOMIC_RELAXED);
    uint64_t h = lpm_mix64(n ^ s->instance);
    char hex[17];
    lpm_hex64(hex, h);
    memcpy(m->rid, "req_", 4);
    memcpy(m->rid + 4, hex, 17);
    lpm_iso_time(m->ts, lpm_wall_ms());
}

static void meta_json(lpm_buf_t *b, const lpm_meta_t *m)
{
    LPM_LIT(b, "\"meta\":{\"timestamp\":\"");
    lpm_buf_add(b, m->ts, 24);
    LPM_LIT(b, "\",\"request_id\":\"");
    lpm_buf_add(b, m->rid, 20);
    LPM_LIT(b, "\"}");
}

void lpm_data_begin(lpm_reply_t *r, int status)
{
    r->status = status;
    r->json = 1;
    r->body.len = 0;
    LPM_LIT(&r->body, "{\"data\":");
}

void lpm_data_end(lpm_reply_t *r, const lpm_meta_t *m)
{
    lpm_buf_addc(&r->body, ',');
    meta_json(&r->body, m);
    lpm_buf_addc(&r->body, '}');
}

void lpm_error_begin(lpm_reply_t *r, int status, const char *code, const char *message)
{
    r->status = status;
    r->json = 1;
    r->body.len = 0;
    LPM_LIT(&r->body, "{\"error\":{\"code\":");
    lpm_json_strz(&r->body, code);
    LPM_LIT(&r->body, ",\"message\":");
    lpm_json_strz(&r->body, message);
}

void lpm_error_end(lpm_reply_t *r, const lpm_meta_t *m)
{
    LPM_LIT(&r->body, "},");
    meta_json(&r->body, m);
    lpm_buf_addc(&r->body, '}');
}

void lpm_error_reply(lpm_reply_t *r, const lpm_meta_t *m, int status, const char *code,
                     const char *message)
{
    lpm_error_begin(r, status, code, message);
    lpm_error_end(r, m);
}

void lpm_param_error(lpm_reply_t *r, const lpm_meta_t *m, const char *param, const char *message)
{
    lpm_error_begin(r, 400, "INVALID_PARAMETER", message);
    LPM_LIT(&r->body, ",\"param\":");
    lpm_json_strz(&r->body, param);
    lpm_error_end(r, m);
}

void lpm_json_time(lpm_buf_t *b, int64_t wall)
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


/* ===== REQUEST HELPERS ===== */

const char *lpm_header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Query parameter: 0 absent, 1 present (*v may be NULL for "?limit"). */
int lpm_query_param(struct MHD_Connection *c, const char *name, const char **v)
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
int lpm_int_param(struct MHD_Connection *c, lpm_reply_t *r, const lpm_meta_t *m, const char *name,
                  uint64_t def, uint64_t lo, uint64_t hi, const char *message, uint64_t *out)
{
    const char *v;
    uint64_t x = def;
    if (lpm_query_param(c, name, &v) && (!parse_uint(v, hi, &x) || x < lo)) {
        lpm_param_error(r, m, name, message);
        return 0;
    }
    *out = x;
    return 1;
}

/* Accept-Encoding: gzip (or x-gzip, or *) with a q-value other than 0. */
int lpm_accepts_gzip(const char *h)
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

/* ===== SENDING ===== */

static void free_data(void *p)
{
    free(p);
}

/* A body that promises `len` bytes (Content-Length) but ends with an error at `cut`. */
typedef struct {
    char *data;
    size_t len, cut;
} lpm_drop_t;

static ssize_t drop_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    lpm_drop_t *d = cls;
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
    lpm_drop_t *d = cls;
    free(d->data);
    free(d);
}

enum MHD_Result lpm_send_reply(struct MHD_Connection *c, lpm_reply_t *r, int gz, const lpm_meta_t *m)
{
    static const char oom_body[] =
        "{\"error\":{\"code\":\"INTERNAL_ERROR\",\"message\":\"out of memory\"}}";
    struct MHD_Response *resp = NULL;
    enum MHD_Result ret;
    int i, gzipped = 0;

    if (r->body.oom) {
        lpm_buf_free(&r->body);
        if (r->stream) {
            r->stream_free(r->stream);
            r->stream = NULL;
        }
        gzipped = 0;
        r->status = 500;
        r->nextra = 0;
        resp = MHD_create_response_from_buffer(sizeof(oom_body) - 1, (void *)(uintptr_t)oom_body,
                                               MHD_RESPMEM_PERSISTENT);
    } else if (r->stream) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, LPM_STREAM_BLOCK, r->stream_read,
                                                 r->stream, r->stream_free);
        if (!resp)
            r->stream_free(r->stream);
        r->stream = NULL;
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
            lpm_drop_t *d = malloc(sizeof(*d));
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

void lpm_count_request(lpm_server_t *s, int ep, int status)
{
    if (status < 0 || status >= LPM_MAX_STATUS)
        status = 0;
    pthread_mutex_lock(&s->mu);
    s->stats.requests[ep][status]++;
    pthread_mutex_unlock(&s->mu);
}

/* Collects the request body; returns 1 once the whole request has arrived. */
int lpm_collect(void **con_cls, const char *upload, size_t *upload_size, enum MHD_Result *ret)
{
    lpm_req_t *rc = *con_cls;
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
            if (rc->body.len + *upload_size > LPM_MAX_BODY)
                rc->too_large = 1;
            else
                lpm_buf_add(&rc->body, upload, *upload_size);
        }
        *upload_size = 0;
        return 0;
    }
    return 1;
}


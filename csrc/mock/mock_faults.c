/*
 * mock_faults.c: fault injection (429 with Retry-After, 5xx, dropped and truncated bodies).
 * A faulted request's fingerprint (method, path, query, Idempotency-Key) is remembered and
 * never faulted again, so a client that retries gets every row exactly once.
 * It also watches the rate gate: when each 429 went out, and which requests arrived while
 * its Retry-After held (lpm_stats_t.during_retry_after).
 *
 * License: MIT (see the repository).
 */
#include "mock_internal.h"

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
uint64_t lpm_fingerprint(struct MHD_Connection *c, const char *method, const char *url)
{
    uint64_t h = LPM_FNV_INIT;
    const char *key = lpm_header(c, "Idempotency-Key");
    h = lpm_fnv(h, method, strlen(method) + 1);
    h = lpm_fnv(h, url, strlen(url) + 1);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, fingerprint_arg, &h);
    h = lpm_fnv(h, "\n", 1);
    if (key)
        h = lpm_fnv(h, key, strlen(key));
    return h;
}

/* Under mu: the fault kind to inject for this request, or -1. */
int lpm_decide_fault(lpm_server_t *s, uint64_t fp)
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
    if (f->count && s->fault_seq >= f->count)
        return -1; /* as many faults as asked for: no more */
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
    if (s->nfaulted < LPM_FAULT_MEMORY) {
        s->faulted[s->nfaulted++] = fp;
    } else {
        s->faulted[s->faulted_next] = fp;
        s->faulted_next = (s->faulted_next + 1) % LPM_FAULT_MEMORY;
    }
    s->stats.faults++;
    s->stats.faults_by_kind[kind]++;
    return kind;
}

void lpm_fault_reply(lpm_reply_t *r, const lpm_meta_t *m, int kind, int64_t retry_after)
{
    char value[40];
    switch (kind) {
    case LPM_F_429:
    case LPM_F_429_DATE:
        lpm_error_reply(r, m, 429, "RATE_LIMITED", "rate limit exceeded (injected by leadpipe.mock)");
        if (kind == LPM_F_429) {
            snprintf(value, sizeof(value), "%lld", (long long)retry_after);
        } else {
            char date[30];
            lpm_http_date(date, (lpm_wall_ms() + 999) / 1000 + retry_after);
            snprintf(value, sizeof(value), "%s", date);
        }
        lpm_add_header(r, "Retry-After", value);
        break;
    case LPM_F_500:
        lpm_error_reply(r, m, 500, "INTERNAL_ERROR", "internal server error (injected by leadpipe.mock)");
        break;
    case LPM_F_502:
        lpm_error_reply(r, m, 502, "BAD_GATEWAY", "bad gateway (injected by leadpipe.mock)");
        break;
    default:
        lpm_error_reply(r, m, 503, "SERVICE_UNAVAILABLE",
                    "service unavailable (injected by leadpipe.mock)");
        break;
    }
}


/* A request reached the API listener (its head is read): counted when a 429's Retry-After
 * still held. Takes mu. */
void lpm_note_arrival(lpm_server_t *s)
{
    int64_t now = lpm_mono_ms();
    int any = 0, late = 0;
    size_t i;
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < LPM_RA_MEMORY; i++) {
        if (s->ra_sent[i] == 0 || now < s->ra_sent[i] || now >= s->ra_until[i])
            continue;
        any = 1;
        if (now > s->ra_sent[i] + LPM_RA_GRACE_MS)
            late = 1;
    }
    s->stats.during_retry_after_any += (uint64_t)any;
    s->stats.during_retry_after += (uint64_t)late;
    pthread_mutex_unlock(&s->mu);
}

/* A faulted reply of `kind` goes out now: a 429 opens a window of retry_after seconds (for
 * the HTTP-date form too: its date is at least that far). Takes mu. */
void lpm_note_rate_limit(lpm_server_t *s, int kind, int64_t retry_after)
{
    int64_t now;
    if ((kind != LPM_F_429 && kind != LPM_F_429_DATE) || retry_after <= 0)
        return;
    now = lpm_mono_ms();
    pthread_mutex_lock(&s->mu);
    s->ra_sent[s->ra_next] = now;
    s->ra_until[s->ra_next] = now + retry_after * 1000;
    s->ra_next = (s->ra_next + 1) % LPM_RA_MEMORY;
    s->stats.rate_limited++;
    pthread_mutex_unlock(&s->mu);
}

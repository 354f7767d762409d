/*
 * mock_lua.c: leadpipe.mockserver, the Lua binding of the fake Leadpipe API server.
 *
 *   local ms = require "leadpipe.mockserver"
 *   local srv, err = ms.start{ port =, api_key =, seed =, audiences = {...}, ... }
 *   srv:port() srv:redirect_port() srv:running() srv:stats() srv:configure{...}
 *   srv:reset_stats() srv:stop()          -- stop is idempotent; __gc and __close stop too
 *   ms.wait_signal([seconds])             -- blocks until SIGINT/SIGTERM: "SIGINT" | nil
 *
 * lua/leadpipe/mock.lua is the friendly face (defaults, URLs, serve). The server runs on
 * libmicrohttpd's threads and never touches the Lua state. Misuse (bad option types or
 * ranges, unknown option names) raises; a port that cannot be bound returns nil, message.
 * Messages never contain the API key.
 *
 * License: MIT (see the repository).
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "lp_compat.h"
#include "lp_util.h"
#include "mock_buf.h"
#include "mock_server.h"

#define LPM_API __attribute__((visibility("default")))
#define LPM_SERVER_MT "leadpipe.mockserver"
#define LPM_VERSION "leadpipe.mockserver " LP_VERSION
#define LPM_DEFAULT_KEY "sk_test_leadpipe_mock"

typedef struct {
    lpm_server_t *srv;   /* NULL once collected */
    int64_t seed;        /* default seed for faults given to configure */
} lpm_lua_t;

/* ===== OPTION PARSING (leadpipe.core's helpers, lp_util.h) ===== */

/* Raises "bad argument #arg to 'fn' (message)". */
static int opt_error(lua_State *L, int arg, const char *fmt, const char *name)
{
    lua_pushfstring(L, fmt, name);
    return luaL_argerror(L, arg, lua_tostring(L, -1));
}

/* Field `name` of the table at t as an integer in [lo, hi], def when absent; *present
 * (if given) says whether it was there. Errors name the field. */
static int64_t opt_int(lua_State *L, int t, const char *name, int64_t def, int64_t lo, int64_t hi,
                       int *present)
{
    lua_Integer v;
    if (present) {
        lua_getfield(L, t, name);
        *present = !lua_isnil(L, -1);
        lua_pop(L, 1);
    }
    v = lp_opt_integer(L, t, name, (lua_Integer)def, (lua_Integer)lo);
    if (v > (lua_Integer)hi)
        lp_field_error(L, t, name, lua_pushfstring(L, "must be at most %f", (double)hi));
    return (int64_t)v;
}

static int opt_bool(lua_State *L, int t, const char *name, int def, int *present)
{
    if (present) {
        lua_getfield(L, t, name);
        *present = !lua_isnil(L, -1);
        lua_pop(L, 1);
    }
    return lp_opt_boolean(L, t, name, def);
}

#define LPM_INT64_LO (-(int64_t)9200000000000000000LL)
#define LPM_INT64_HI ((int64_t)9200000000000000000LL)

static const char *const fault_keys[] = { "rate", "every", "seed", "kinds", "retry_after", "short",
                                          "count", NULL };

/* Parses the faults value at stack index idx: nil/false (off) or a table. */
static void parse_faults(lua_State *L, int idx, int arg, int64_t seed, lpm_faults_t *f)
{
    int k;
    memset(f, 0, sizeof(*f));
    f->retry_after = 1;
    if (lua_isnil(L, idx) || (lua_type(L, idx) == LUA_TBOOLEAN && !lua_toboolean(L, idx)))
        return;
    if (lua_type(L, idx) != LUA_TTABLE)
        opt_error(L, arg, "option '%s' must be a table or false", "faults");
    lp_check_fields(L, idx, fault_keys);
    f->rate = lp_opt_seconds(L, idx, "rate", 0, 0);
    if (f->rate > 1)
        lp_field_error(L, idx, "rate", "must be a number in [0, 1]");
    f->every = (uint64_t)opt_int(L, idx, "every", 0, 0, 1000000000000000LL, NULL);
    f->seed = (uint64_t)opt_int(L, idx, "seed", seed, LPM_INT64_LO, LPM_INT64_HI, NULL);
    f->retry_after = opt_int(L, idx, "retry_after", 1, 0, 86400, NULL);
    f->count = (uint64_t)opt_int(L, idx, "count", 0, 0, 1000000000000000LL, NULL);
    f->short_pages = lp_opt_seconds(L, idx, "short", 0, 0);
    if (f->short_pages > 1)
        lp_field_error(L, idx, "short", "must be a number in [0, 1]");
    lua_getfield(L, idx, "kinds");
    if (lua_isnil(L, -1)) {
        for (k = 0; k < LPM_F_COUNT; k++)
            f->kinds[k] = k;
        f->nkinds = LPM_F_COUNT;
    } else {
        size_t i, n;
        if (lua_type(L, -1) != LUA_TTABLE)
            opt_error(L, arg, "option '%s' must be an array of strings", "faults.kinds");
        n = lp_rawlen(L, -1);
        if (n > LPM_F_COUNT)
            opt_error(L, arg, "option '%s' has too many entries", "faults.kinds");
        for (i = 1; i <= n; i++) {
            const char *name;
            lua_rawgeti(L, -1, (int)i);
            if (lua_type(L, -1) != LUA_TSTRING)
                opt_error(L, arg, "option '%s' must be an array of strings", "faults.kinds");
            name = lua_tostring(L, -1);
            for (k = 0; k < LPM_F_COUNT; k++) {
                if (strcmp(name, lpm_fault_names[k]) == 0)
                    break;
            }
            if (k == LPM_F_COUNT)
                opt_error(L, arg, "unknown fault kind '%s'", name);
            f->kinds[f->nkinds++] = k;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    f->enabled = f->every > 0 || f->rate > 0;
}

static const char *const audience_keys[] = { "id", "rows", "fail", "name", "status", "daily_runs",
                                             NULL };

/* Parses opts.audiences (array at the top of the stack) into a userdata array left
 * on the stack (so a raise frees it). Strings point into the anchored options table. */
static lpm_audience_t *parse_audiences(lua_State *L, int arg, size_t *count)
{
    int t = lua_gettop(L);
    size_t i, j, n;
    lpm_audience_t *a;
    if (lua_type(L, t) != LUA_TTABLE)
        opt_error(L, arg, "option '%s' must be an array of audiences", "audiences");
    n = lp_rawlen(L, t);
    a = lua_newuserdata(L, (n ? n : 1) * sizeof(*a));
    memset(a, 0, (n ? n : 1) * sizeof(*a));
    for (i = 0; i < n; i++) {
        size_t idlen;
        const char *id;
        int e;
        lua_rawgeti(L, t, (int)(i + 1));
        e = lua_gettop(L);
        if (lua_type(L, e) != LUA_TTABLE)
            opt_error(L, arg, "option '%s' must be an array of tables", "audiences");
        lp_check_fields(L, e, audience_keys);
        id = lp_opt_string(L, e, "id", NULL, &idlen);
        if (!id || !lpm_is_uuid(id, idlen)) {
            opt_error(L, arg, "option '%s' needs a UUID string id", "audiences");
            return NULL; /* not reached: opt_error raises */
        }
        memcpy(a[i].id, id, 36);
        a[i].id[36] = '\0';
        for (j = 0; j < i; j++) {
            if (strncasecmp(a[j].id, a[i].id, 36) == 0)
                opt_error(L, arg, "audience id '%s' is repeated", a[i].id);
        }
        a[i].rows = opt_int(L, e, "rows", 1000, 0, 1000000000000LL, NULL);
        a[i].daily_runs = opt_int(L, e, "daily_runs", 0, 0, 1000, NULL);
        a[i].name = (char *)(uintptr_t)lp_opt_string(L, e, "name", NULL, NULL);
        a[i].status = (char *)(uintptr_t)lp_opt_string(L, e, "status", NULL, NULL);
        if (a[i].status && strcmp(a[i].status, "draft") != 0 &&
            strcmp(a[i].status, "active") != 0 && strcmp(a[i].status, "paused") != 0)
            opt_error(L, arg, "audience status must be draft, active or paused (got '%s')",
                      a[i].status);
        lua_getfield(L, e, "fail");
        if (lua_type(L, -1) == LUA_TTABLE) {
            int ft = lua_gettop(L);
            a[i].fail_code = (char *)(uintptr_t)lp_opt_string(L, ft, "code", "RUN_FAILED", NULL);
            a[i].fail_message =
                (char *)(uintptr_t)lp_opt_string(L, ft, "message", "the run failed", NULL);
        } else if (lua_toboolean(L, -1)) {
            a[i].fail_code = (char *)(uintptr_t)"RUN_FAILED";
            a[i].fail_message = (char *)(uintptr_t)"the run failed";
        }
        lua_pop(L, 2);
    }
    *count = n;
    return a;
}

/* ===== SERVER OBJECT ===== */

static lpm_lua_t *lpm_check_server(lua_State *L, int idx)
{
    lpm_lua_t *m = (lpm_lua_t *)luaL_checkudata(L, idx, LPM_SERVER_MT);
    if (!m->srv)
        luaL_error(L, "attempt to use a closed mock server");
    return m;
}

static const char *const start_keys[] = {
    "port", "api_key", "seed", "audiences", "queued_ms", "running_ms", "latency_ms", "gzip",
    "faults", "threads", "export_cap", NULL,
};

/* start(opts) -> server | nil, message */
static int lpm_lua_start(lua_State *L)
{
    lpm_config_t cfg;
    lpm_lua_t *m;
    char err[256];
    int64_t seed;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lp_check_fields(L, 1, start_keys);
    memset(&cfg, 0, sizeof(cfg));
    cfg.port = (int)opt_int(L, 1, "port", 0, 0, 65535, NULL);
    cfg.api_key = lp_opt_string(L, 1, "api_key", LPM_DEFAULT_KEY, &cfg.api_key_len);
    if (cfg.api_key_len == 0)
        opt_error(L, 1, "option '%s' must not be empty", "api_key");
    seed = opt_int(L, 1, "seed", 1, LPM_INT64_LO, LPM_INT64_HI, NULL);
    cfg.seed = (uint64_t)seed;
    cfg.queued_ms = opt_int(L, 1, "queued_ms", 0, 0, 86400000, NULL);
    cfg.running_ms = opt_int(L, 1, "running_ms", 0, 0, 86400000, NULL);
    cfg.latency_ms = opt_int(L, 1, "latency_ms", 0, 0, 600000, NULL);
    cfg.gzip = opt_bool(L, 1, "gzip", 1, NULL);
    cfg.threads = (int)opt_int(L, 1, "threads", 4, 0, LPM_MAX_THREADS, NULL);
    cfg.export_cap = opt_int(L, 1, "export_cap", 300000, 0, 1000000000000LL, NULL);
    lua_getfield(L, 1, "faults");
    parse_faults(L, 2, 1, seed, &cfg.faults);
    lua_pop(L, 1);
    lua_getfield(L, 1, "audiences");                         /* 2: audiences */
    if (lua_isnil(L, 2)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    cfg.audiences = parse_audiences(L, 1, &cfg.naudiences);  /* 3: parsed array */

    m = (lpm_lua_t *)lua_newuserdata(L, sizeof(*m));
    m->srv = NULL;
    m->seed = seed;
    luaL_getmetatable(L, LPM_SERVER_MT);
    lua_setmetatable(L, -2);
    m->srv = lpm_server_start(&cfg, err, sizeof(err));
    if (!m->srv) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

static int lpm_lua_port(lua_State *L)
{
    lua_pushinteger(L, lpm_server_port(lpm_check_server(L, 1)->srv));
    return 1;
}

static int lpm_lua_redirect_port(lua_State *L)
{
    lua_pushinteger(L, lpm_server_redirect_port(lpm_check_server(L, 1)->srv));
    return 1;
}

static int lpm_lua_running(lua_State *L)
{
    lpm_lua_t *m = (lpm_lua_t *)luaL_checkudata(L, 1, LPM_SERVER_MT);
    lua_pushboolean(L, m->srv && lpm_server_running(m->srv));
    return 1;
}

static void set_count(lua_State *L, const char *name, uint64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, name);
}

/* stats() -> { requests = { [endpoint] = { [status] = n } }, connections =, ... } */
static int lpm_lua_stats(lua_State *L)
{
    lpm_lua_t *m = lpm_check_server(L, 1);
    lpm_stats_t *st = (lpm_stats_t *)lua_newuserdata(L, sizeof(*st));
    int ep, status, k;
    lpm_server_stats(m->srv, st);
    lua_createtable(L, 0, 10);
    lua_createtable(L, 0, LPM_EP_COUNT);
    for (ep = 0; ep < LPM_EP_COUNT; ep++) {
        lua_newtable(L);
        for (status = 0; status < LPM_MAX_STATUS; status++) {
            if (st->requests[ep][status]) {
                lua_pushinteger(L, (lua_Integer)st->requests[ep][status]);
                lua_rawseti(L, -2, status);
            }
        }
        lua_setfield(L, -2, lpm_endpoint_names[ep]);
    }
    lua_setfield(L, -2, "requests");
    set_count(L, "connections", st->connections);
    set_count(L, "runs_created", st->runs_created);
    set_count(L, "idempotency_keys", st->idempotency_keys);
    set_count(L, "faults", st->faults);
    lua_createtable(L, 0, LPM_F_COUNT);
    for (k = 0; k < LPM_F_COUNT; k++) {
        if (st->faults_by_kind[k])
            set_count(L, lpm_fault_names[k], st->faults_by_kind[k]);
    }
    lua_setfield(L, -2, "faults_by_kind");
    set_count(L, "redirect_requests", st->redirect_requests);
    lua_pushboolean(L, st->redirect_key_seen);
    lua_setfield(L, -2, "redirect_key_seen");
    set_count(L, "rate_limited", st->rate_limited);
    set_count(L, "during_retry_after_any", st->during_retry_after_any);
    set_count(L, "during_retry_after", st->during_retry_after);
    return 1;
}

static const char *const configure_keys[] = {
    "faults", "latency_ms", "queued_ms", "running_ms", "gzip", NULL,
};

/* configure{ faults =, latency_ms =, queued_ms =, running_ms =, gzip = } */
static int lpm_lua_configure(lua_State *L)
{
    lpm_lua_t *m = lpm_check_server(L, 1);
    lpm_update_t u;
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lp_check_fields(L, 2, configure_keys);
    memset(&u, 0, sizeof(u));
    lua_getfield(L, 2, "faults");
    if (!lua_isnil(L, 3)) {
        u.set_faults = 1;
        parse_faults(L, 3, 2, m->seed, &u.faults);
    }
    lua_pop(L, 1);
    u.latency_ms = opt_int(L, 2, "latency_ms", 0, 0, 600000, &u.set_latency);
    u.queued_ms = opt_int(L, 2, "queued_ms", 0, 0, 86400000, &u.set_queued);
    u.running_ms = opt_int(L, 2, "running_ms", 0, 0, 86400000, &u.set_running);
    u.gzip = opt_bool(L, 2, "gzip", 1, &u.set_gzip);
    lpm_server_configure(m->srv, &u);
    return 0;
}

static int lpm_lua_reset_stats(lua_State *L)
{
    lpm_server_reset_stats(lpm_check_server(L, 1)->srv);
    return 0;
}

/* stop(): idempotent; the object keeps its statistics until collected. */
static int lpm_lua_stop(lua_State *L)
{
    lpm_lua_t *m = (lpm_lua_t *)luaL_checkudata(L, 1, LPM_SERVER_MT);
    if (m->srv)
        lpm_server_stop(m->srv);
    return 0;
}

static int lpm_lua_gc(lua_State *L)
{
    lpm_lua_t *m = (lpm_lua_t *)luaL_checkudata(L, 1, LPM_SERVER_MT);
    if (m->srv) {
        lpm_server_free(m->srv);
        m->srv = NULL;
    }
    return 0;
}

static int lpm_lua_tostring(lua_State *L)
{
    lpm_lua_t *m = (lpm_lua_t *)luaL_checkudata(L, 1, LPM_SERVER_MT);
    if (!m->srv)
        lua_pushliteral(L, "leadpipe.mockserver (closed)");
    else if (lpm_server_running(m->srv))
        lua_pushfstring(L, "leadpipe.mockserver (127.0.0.1:%d, running)", lpm_server_port(m->srv));
    else
        lua_pushliteral(L, "leadpipe.mockserver (stopped)");
    return 1;
}

/* ===== SIGNALS ===== */

static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
    caught_signal = sig;
}

/* wait_signal([seconds]) -> "SIGINT" | "SIGTERM" | nil (timed out). Blocks the caller;
 * the previous handlers are restored before it returns. */
static int lpm_lua_wait_signal(lua_State *L)
{
    double timeout = luaL_optnumber(L, 1, -1);
    struct sigaction sa, old_int, old_term;
    int64_t start = lpm_mono_ms();
    int sig;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    caught_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    while (!caught_signal) {
        if (timeout >= 0 && (double)(lpm_mono_ms() - start) >= timeout * 1000)
            break;
        lpm_sleep_ms(50);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sig = caught_signal;
    if (sig == SIGINT)
        lua_pushliteral(L, "SIGINT");
    else if (sig == SIGTERM)
        lua_pushliteral(L, "SIGTERM");
    else
        lua_pushnil(L);
    return 1;
}

/* ===== MODULE ===== */

static const luaL_Reg mock_methods[] = {
    { "port", lpm_lua_port },
    { "redirect_port", lpm_lua_redirect_port },
    { "running", lpm_lua_running },
    { "stats", lpm_lua_stats },
    { "configure", lpm_lua_configure },
    { "reset_stats", lpm_lua_reset_stats },
    { "stop", lpm_lua_stop },
    { NULL, NULL },
};

static const luaL_Reg mock_meta[] = {
    { "__gc", lpm_lua_gc },
    { "__close", lpm_lua_stop },
    { "__tostring", lpm_lua_tostring },
    { NULL, NULL },
};

static const luaL_Reg mock_funcs[] = {
    { "start", lpm_lua_start },
    { "wait_signal", lpm_lua_wait_signal },
    { NULL, NULL },
};

LPM_API int luaopen_leadpipe_mockserver(lua_State *L)
{
    int k;
    if (lp_newmetatable(L, LPM_SERVER_MT)) {
        lp_setfuncs(L, mock_meta, 0);
        lp_newlib(L, mock_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lp_newlib(L, mock_funcs);
    lua_pushliteral(L, LPM_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushliteral(L, LPM_DEFAULT_KEY);
    lua_setfield(L, -2, "DEFAULT_KEY");
    lua_createtable(L, LPM_F_COUNT, 0);
    for (k = 0; k < LPM_F_COUNT; k++) {
        lua_pushstring(L, lpm_fault_names[k]);
        lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "FAULT_KINDS");
    return 1;
}

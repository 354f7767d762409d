/*
 * lp_session.c: core.session(opts) and the session userdata (see lp_session.h).
 *
 *   s:request(opts)  -> request (the transfer starts at once)
 *   s:perform()      -> number of transfers still running; never blocks
 *   s:poll(seconds)  -> number of sockets with activity; blocks at most that long
 *   s:timeout()      -> seconds until libcurl wants perform() again, or nil
 *   s:close()        idempotent, aborts transfers in flight; also __gc and __close
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp_request.h"
#include "lp_session.h"
#include "lp_util.h"

/* Defaults of core.session{}. */
#define LP_DEFAULT_CONNECT_TIMEOUT 10.0
#define LP_DEFAULT_TIMEOUT 60.0
#define LP_DEFAULT_MAX_RESPONSE (64 * 1024 * 1024)
#define LP_DEFAULT_MAX_CONNECTIONS 8
/* Longest single poll, in seconds (about 24 days: an int of milliseconds). */
#define LP_POLL_MAX 2000000.0

/* curl_global_init is not thread-safe in older libcurl and must run once per
 * process: done at the first luaopen, never undone (other code may use curl). */
static int lp_curl_ready = 0;

/* ===== LIFETIME ===== */

/* Aborts the transfers in flight and frees the multi handle. Idempotent. */
static void session_release(lp_session_t *s)
{
    while (s->transfers != NULL)
        lp_request_abort(s->transfers); /* unlinks it */
    if (s->multi != NULL) {
        curl_multi_cleanup(s->multi);
        s->multi = NULL;
    }
    free(s->user_agent);
    s->user_agent = NULL;
}

static lp_session_t *check_session(lua_State *L, int arg)
{
    lp_session_t *s = (lp_session_t *)luaL_checkudata(L, arg, LP_SESSION_MT);
    if (s->multi == NULL)
        luaL_error(L, "attempt to use a closed session");
    return s;
}

CURLMcode lp_session_drive(lp_session_t *s, int *running)
{
    CURLMsg *msg;
    int left;
    CURLMcode mc = curl_multi_perform(s->multi, running);
    /* Completed transfers are collected even after an error. */
    while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            /* msg dies with the easy handle: copy what is needed first. */
            CURL *easy = msg->easy_handle;
            CURLcode rc = msg->data.result;
            char *r = NULL;
            if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &r) == CURLE_OK && r != NULL)
                lp_request_finish((struct lp_request_t *)r, rc);
        }
    }
    return mc;
}

/* ===== CREATING ===== */

static const char *const session_fields[] = {
    "connect_timeout", "timeout", "max_response", "user_agent", "verify", "max_connections",
    NULL,
};

/* core.session([opts]) -> session. Raises on bad options or when out of memory. */
static int lp_session_new(lua_State *L)
{
    double connect_timeout = LP_DEFAULT_CONNECT_TIMEOUT;
    double timeout = LP_DEFAULT_TIMEOUT;
    lua_Integer max_response = LP_DEFAULT_MAX_RESPONSE;
    lua_Integer max_connections = LP_DEFAULT_MAX_CONNECTIONS;
    int verify = 1;
    const char *user_agent = NULL;
    size_t ua_len = 0;
    lp_session_t *s;

    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        lp_check_fields(L, 1, session_fields);
        connect_timeout = lp_opt_seconds(L, 1, "connect_timeout", connect_timeout, 1e-9);
        timeout = lp_opt_seconds(L, 1, "timeout", timeout, 0);
        max_response = lp_opt_integer(L, 1, "max_response", max_response, 1);
        max_connections = lp_opt_integer(L, 1, "max_connections", max_connections, 0);
        verify = lp_opt_boolean(L, 1, "verify", verify);
        user_agent = lp_opt_string(L, 1, "user_agent", NULL, &ua_len);
        if (user_agent != NULL && (memchr(user_agent, '\r', ua_len) != NULL ||
                                   memchr(user_agent, '\n', ua_len) != NULL ||
                                   memchr(user_agent, '\0', ua_len) != NULL))
            lp_field_error(L, 1, "user_agent", "line break in value");
    }
    lua_settop(L, 1);
    if (user_agent == NULL) {
        user_agent = lua_pushfstring(L, "leadpipe/%s libcurl/%s %s", LP_VERSION,
                                     curl_version_info(CURLVERSION_NOW)->version, LUA_VERSION);
        ua_len = strlen(user_agent);
    }

    /* Closed until the multi handle exists; __gc frees whatever was taken. */
    s = (lp_session_t *)lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_getmetatable(L, LP_SESSION_MT);
    lua_setmetatable(L, -2);
    s->connect_timeout_ms = lp_seconds_to_ms(connect_timeout);
    s->timeout_ms = lp_seconds_to_ms(timeout);
    /* max_response >= 1 here; at most half the address space */
    s->max_response = (unsigned long long)max_response > (unsigned long long)(SIZE_MAX / 2)
                          ? SIZE_MAX / 2
                          : (size_t)max_response;
    s->verify = verify;
    s->user_agent = (char *)malloc(ua_len + 1);
    if (s->user_agent == NULL)
        return luaL_error(L, "out of memory");
    memcpy(s->user_agent, user_agent, ua_len + 1);
    s->multi = curl_multi_init();
    if (s->multi == NULL) {
        session_release(s);
        return luaL_error(L, "out of memory");
    }
    (void)curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    if (max_connections > 0) {
        long n = max_connections > 1000000 ? 1000000L : (long)max_connections;
        (void)curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, n);
        (void)curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, 2 * n);
    }
    return 1;
}

/* ===== METHODS ===== */

/* s:request(opts) -> request. The transfer starts at once (one non-blocking step). */
static int lp_session_request(lua_State *L)
{
    lp_session_t *s = check_session(L, 1);
    int running;
    lp_request_new(L, s);
    /* Errors of this step are reported by the next perform(). */
    (void)lp_session_drive(s, &running);
    return 1;
}

static int raise_multi_error(lua_State *L, const char *what, CURLMcode mc)
{
    if (mc == CURLM_OUT_OF_MEMORY)
        return luaL_error(L, "out of memory");
    return luaL_error(L, "%s: %s", what, curl_multi_strerror(mc));
}

/* s:perform() -> integer: advances every transfer without blocking; returns
 * the number still running. Raises only on a libcurl internal failure. */
static int lp_session_perform(lua_State *L)
{
    lp_session_t *s = check_session(L, 1);
    int running = 0;
    CURLMcode mc = lp_session_drive(s, &running);
    if (mc != CURLM_OK)
        return raise_multi_error(L, "perform", mc);
    lua_pushinteger(L, running);
    return 1;
}

/* s:poll(seconds) -> integer: waits until a transfer has something to do, or
 * libcurl's next timeout, or seconds pass, whichever comes first; returns the
 * number of sockets with activity. The only call of leadpipe.core that blocks
 * (besides core.sleep). It waits the whole time when nothing is in flight. */
static int lp_session_poll(lua_State *L)
{
    lp_session_t *s = check_session(L, 1);
    double seconds = luaL_checknumber(L, 2);
    int fds = 0, ms;
    CURLMcode mc;
    luaL_argcheck(L, seconds >= 0 && seconds <= LP_POLL_MAX, 2, "seconds out of range");
    ms = (int)lp_seconds_to_ms(seconds);
#if LP_CURL_VER_GE(7, 66, 0)
    mc = curl_multi_poll(s->multi, NULL, 0, ms, &fds);
#else
    mc = curl_multi_wait(s->multi, NULL, 0, ms, &fds);
#endif
    if (mc != CURLM_OK)
        return raise_multi_error(L, "poll", mc);
    lua_pushinteger(L, fds);
    return 1;
}

/* s:timeout() -> seconds | nil: when libcurl next wants perform() (0: now). */
static int lp_session_timeout(lua_State *L)
{
    lp_session_t *s = check_session(L, 1);
    long ms = -1;
    CURLMcode mc = curl_multi_timeout(s->multi, &ms);
    if (mc != CURLM_OK)
        return raise_multi_error(L, "timeout", mc);
    if (ms < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)ms / 1000.0);
    return 1;
}

/* s:close(), __gc, __close: aborts transfers in flight, frees everything. Idempotent. */
static int lp_session_close(lua_State *L)
{
    lp_session_t *s = (lp_session_t *)luaL_checkudata(L, 1, LP_SESSION_MT);
    session_release(s);
    return 0;
}

static int lp_session_tostring(lua_State *L)
{
    lp_session_t *s = (lp_session_t *)luaL_checkudata(L, 1, LP_SESSION_MT);
    if (s->multi == NULL) {
        lua_pushliteral(L, "leadpipe.session (closed)");
    } else {
        int n = 0;
        const struct lp_request_t *r;
        for (r = s->transfers; r != NULL; r = r->next)
            n++;
        lua_pushfstring(L, "leadpipe.session (open, %d in flight): %p", n, (void *)s);
    }
    return 1;
}

/* ===== REGISTRATION ===== */

static const luaL_Reg lp_session_methods[] = {
    {"request", lp_session_request},
    {"perform", lp_session_perform},
    {"poll", lp_session_poll},
    {"timeout", lp_session_timeout},
    {"close", lp_session_close},
    {NULL, NULL},
};

static const luaL_Reg lp_session_metamethods[] = {
    {"__gc", lp_session_close},
    {"__close", lp_session_close},
    {"__tostring", lp_session_tostring},
    {NULL, NULL},
};

static const luaL_Reg lp_session_funcs[] = {
    {"session", lp_session_new},
    {NULL, NULL},
};

void lp_session_open(lua_State *L)
{
    if (!lp_curl_ready) {
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK)
            luaL_error(L, LP_NAME ": curl_global_init failed: %s", curl_easy_strerror(rc));
        lp_curl_ready = 1;
    }
    lp_newmetatable(L, LP_SESSION_MT);
    lp_setfuncs(L, lp_session_metamethods, 0);
    lp_newlib(L, lp_session_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lp_setfuncs(L, lp_session_funcs, 0);
}

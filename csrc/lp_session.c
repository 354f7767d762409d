/*
 * lp_session.c: core.session(opts) and the session userdata (see lp_session.h).
 *
 *   s:request(opts)  -> request (the transfer starts at once)
 *   s:timeout()      -> seconds until libcurl wants perform() again, or nil
 *   s:mode()         -> "poll" | "socket"
 *   s:close()        idempotent, aborts transfers in flight; also __gc and __close
 * poll mode (core.session{ mode = "poll" }, the default):
 *   s:perform()      -> number of transfers still running; never blocks
 *   s:poll(seconds)  -> number of sockets with activity; blocks at most that long
 * socket mode (core.session{ mode = "socket" }), for event loops; never blocks:
 *   s:socket_changes()        -> { fd1, what1, fd2, what2, ... } recorded since the
 *                                last call, in order; what: "r", "w", "rw", "" (keep
 *                                the fd but watch nothing), "remove" (forget it: curl
 *                                closes it)
 *   s:timer()                 -> ms | nil, changed: libcurl's latest timeout (nil: none),
 *                                and whether it changed since the last call
 *   s:socket_action(fd, ev)   -> running: fd is ready (ev: letters r, w, e; luv's
 *                                "d" and "p" count as r); finishes completed transfers
 *   s:socket_action()         -> running: the timeout expired (CURL_SOCKET_TIMEOUT)
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
#define LP_DEFAULT_MAX_CONNECTIONS 64
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
        curl_multi_cleanup(s->multi); /* may still call the socket callback */
        s->multi = NULL;
    }
    free(s->user_agent);
    s->user_agent = NULL;
    free(s->changes);
    s->changes = NULL;
    s->nchanges = s->capchanges = 0;
}

static lp_session_t *check_session(lua_State *L, int arg)
{
    lp_session_t *s = (lp_session_t *)luaL_checkudata(L, arg, LP_SESSION_MT);
    if (s->multi == NULL)
        luaL_error(L, "attempt to use a closed session");
    return s;
}

/* Finishes the transfers libcurl reports as done. */
static void collect_done(lp_session_t *s)
{
    CURLMsg *msg;
    int left;
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
}

CURLMcode lp_session_drive(lp_session_t *s, int *running)
{
    CURLMcode mc;
    if (s->socket_mode)
        mc = curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, running);
    else
        mc = curl_multi_perform(s->multi, running);
    /* Completed transfers are collected even after an error. */
    collect_done(s);
    return mc;
}

/* ===== SOCKET MODE: LIBCURL CALLBACKS (no Lua in here) ===== */

/* CURLMOPT_SOCKETFUNCTION: records that libcurl wants fd watched for `what`.
 * A record for an fd that is still pending is updated in place unless it is a
 * removal (the fd number may be reused by the next socket: the removal and the
 * new record must both reach Lua, in that order). */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    lp_session_t *s = (lp_session_t *)userp;
    int w;
    size_t i;
    (void)easy;
    (void)socketp;
    switch (what) {
    case CURL_POLL_IN: w = LP_WATCH_IN; break;
    case CURL_POLL_OUT: w = LP_WATCH_OUT; break;
    case CURL_POLL_INOUT: w = LP_WATCH_IN | LP_WATCH_OUT; break;
    case CURL_POLL_REMOVE: w = LP_WATCH_REMOVE; break;
    default: w = 0; break;
    }
    for (i = s->nchanges; i > 0; i--) {
        lp_sockchange_t *c = &s->changes[i - 1];
        if (c->fd == fd) {
            if (c->what != LP_WATCH_REMOVE) {
                c->what = w;
                return 0;
            }
            break;
        }
    }
    if (s->nchanges == s->capchanges) {
        size_t cap = s->capchanges ? 2 * s->capchanges : 8;
        lp_sockchange_t *p = (lp_sockchange_t *)realloc(s->changes, cap * sizeof *p);
        if (p == NULL) {
            s->record_failed = 1;
            return -1;
        }
        s->changes = p;
        s->capchanges = cap;
    }
    s->changes[s->nchanges].fd = fd;
    s->changes[s->nchanges].what = w;
    s->nchanges++;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: records libcurl's latest timeout (-1: none). */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    lp_session_t *s = (lp_session_t *)userp;
    (void)multi;
    s->timer_ms = timeout_ms < 0 ? -1 : timeout_ms;
    s->timer_changed = 1;
    return 0;
}

/* ===== CREATING ===== */

static const char *const session_fields[] = {
    "connect_timeout", "timeout", "max_response", "user_agent", "verify", "max_connections",
    "mode", NULL,
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
    const char *mode = "poll";
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
        mode = lp_opt_string(L, 1, "mode", mode, NULL);
        if (strcmp(mode, "poll") != 0 && strcmp(mode, "socket") != 0)
            lp_field_error(L, 1, "mode", "must be \"poll\" or \"socket\"");
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
    s->socket_mode = strcmp(mode, "socket") == 0;
    s->timer_ms = -1;
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
    if (s->socket_mode) {
        /* s is a userdata: its address is fixed for its whole life, and the
         * multi handle dies first (session_release). */
        if (curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
            curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, (void *)s) != CURLM_OK ||
            curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
            curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, (void *)s) != CURLM_OK) {
            session_release(s);
            return luaL_error(L, "session: libcurl refused the socket-action callbacks");
        }
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

/* check_session for the methods of one mode. */
static lp_session_t *check_poll_session(lua_State *L, int arg, const char *method)
{
    lp_session_t *s = check_session(L, arg);
    if (s->socket_mode)
        luaL_error(L, "session:%s() is for poll mode (this session is in socket mode)", method);
    return s;
}

static lp_session_t *check_socket_session(lua_State *L, int arg, const char *method)
{
    lp_session_t *s = check_session(L, arg);
    if (!s->socket_mode)
        luaL_error(L, "session:%s() is for socket mode (this session is in poll mode)", method);
    return s;
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
    lp_session_t *s = check_poll_session(L, 1, "perform");
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
    lp_session_t *s = check_poll_session(L, 1, "poll");
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

/* s:mode() -> "poll" | "socket". */
static int lp_session_mode(lua_State *L)
{
    lp_session_t *s = check_session(L, 1);
    lua_pushstring(L, s->socket_mode ? "socket" : "poll");
    return 1;
}

/* s:socket_changes() -> array { fd, what, fd, what, ... }: the socket
 * callback's records since the last call, oldest first; empties them.
 * Raises "out of memory" when a record was lost. */
static int lp_session_socket_changes(lua_State *L)
{
    lp_session_t *s = check_socket_session(L, 1, "socket_changes");
    size_t i;
    if (s->record_failed) {
        s->record_failed = 0;
        return luaL_error(L, "out of memory");
    }
    luaL_checkstack(L, 4, NULL);
    lua_createtable(L, (int)(2 * s->nchanges), 0);
    for (i = 0; i < s->nchanges; i++) {
        const char *what;
        switch (s->changes[i].what) {
        case LP_WATCH_IN: what = "r"; break;
        case LP_WATCH_OUT: what = "w"; break;
        case LP_WATCH_IN | LP_WATCH_OUT: what = "rw"; break;
        case LP_WATCH_REMOVE: what = "remove"; break;
        default: what = ""; break;
        }
        lua_pushinteger(L, (lua_Integer)s->changes[i].fd);
        lua_rawseti(L, -2, (int)(2 * i + 1));
        lua_pushstring(L, what);
        lua_rawseti(L, -2, (int)(2 * i + 2));
    }
    s->nchanges = 0;
    return 1;
}

/* s:timer() -> ms | nil, changed: the timeout libcurl last asked for (nil:
 * none) and whether it changed since the last call (which clears that). */
static int lp_session_timer(lua_State *L)
{
    lp_session_t *s = check_socket_session(L, 1, "timer");
    if (s->timer_ms < 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)s->timer_ms);
    lua_pushboolean(L, s->timer_changed);
    s->timer_changed = 0;
    return 2;
}

/* s:socket_action([fd, events]) -> running. With fd: that socket is ready for
 * `events` (a string of r, w, e; luv's d and p count as r; "" lets libcurl
 * find out). Without: libcurl's timeout expired. Finishes the completed
 * transfers. Raises only on a libcurl internal failure or when a socket record
 * could not be kept. */
static int lp_session_socket_action(lua_State *L)
{
    lp_session_t *s = check_socket_session(L, 1, "socket_action");
    curl_socket_t fd = CURL_SOCKET_TIMEOUT;
    int mask = 0, running = 0;
    CURLMcode mc;
    if (!lua_isnoneornil(L, 2)) {
        lua_Integer n = luaL_checkinteger(L, 2);
        const char *ev = luaL_optstring(L, 3, "");
        luaL_argcheck(L, n >= 0 && n <= INT_MAX, 2, "not a socket");
        fd = (curl_socket_t)n;
        for (; *ev != '\0'; ev++) {
            switch (*ev) {
            case 'r': case 'd': case 'p': mask |= CURL_CSELECT_IN; break;
            case 'w': mask |= CURL_CSELECT_OUT; break;
            case 'e': mask |= CURL_CSELECT_ERR; break;
            default: return luaL_argerror(L, 3, "letters r, w, e, d, p expected");
            }
        }
    }
    mc = curl_multi_socket_action(s->multi, fd, mask, &running);
    collect_done(s);
    if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET)
        return raise_multi_error(L, "socket_action", mc);
    if (s->record_failed) {
        s->record_failed = 0;
        return luaL_error(L, "out of memory");
    }
    lua_pushinteger(L, running);
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
        lua_pushfstring(L, "leadpipe.session (open, %s%d in flight): %p",
                        s->socket_mode ? "socket mode, " : "", n, (void *)s);
    }
    return 1;
}

/* ===== REGISTRATION ===== */

static const luaL_Reg lp_session_methods[] = {
    {"request", lp_session_request},
    {"perform", lp_session_perform},
    {"poll", lp_session_poll},
    {"timeout", lp_session_timeout},
    {"mode", lp_session_mode},
    {"socket_changes", lp_session_socket_changes},
    {"timer", lp_session_timer},
    {"socket_action", lp_session_socket_action},
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

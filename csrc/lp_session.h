/*
 * lp_session.h: the session userdata, owner of one libcurl multi handle.
 *
 * A session keeps connections alive between its requests and runs several
 * transfers at once (HTTP/2 multiplexing where the server offers it). It
 * never blocks except in session:poll(seconds).
 *
 * Two modes, chosen at creation and fixed for the session's life:
 *   "poll" (default)  Lua calls perform() and poll(); for the blocking host.
 *   "socket"          libcurl's socket-action API, for an event loop: the
 *                     CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION callbacks only
 *                     record, in C, which sockets libcurl wants watched and
 *                     its latest timeout (no Lua runs inside them); Lua reads
 *                     those records (socket_changes, timer) and reports
 *                     readiness with socket_action.
 *
 * Lifetime: a session links every request it has in flight (lp_request_t
 * prev/next). Closing the session aborts them and unlinks them; closing a
 * request in flight removes it from the session and unlinks it. So whichever
 * of the two is closed or collected first, neither is left pointing at the
 * other (this holds at lua_close too, when finalizers run in any order).
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_SESSION_H
#define LP_SESSION_H

#include <stddef.h>

#include <curl/curl.h>

#include "lp_compat.h"
#include "leadpipe.h"

/* (curl.h always defines LIBCURL_VERSION_NUM; static analysers that skip system
 * headers do not, and must still see these files.) */
#if defined(LIBCURL_VERSION_NUM) && !LP_CURL_VER_GE(7, 62, 0)
#error "leadpipe.core needs libcurl 7.62.0 or newer"
#endif

#define LP_SESSION_MT "leadpipe.session"

struct lp_request_t;

/* One record of the socket callback: libcurl wants fd watched for `what`
 * (LP_WATCH_IN/OUT bits; 0: known but not watched for now), or forgotten
 * (LP_WATCH_REMOVE: libcurl is about to close it). */
#define LP_WATCH_IN 1
#define LP_WATCH_OUT 2
#define LP_WATCH_REMOVE 4

typedef struct lp_sockchange_t {
    curl_socket_t fd;
    int what;
} lp_sockchange_t;

typedef struct lp_session_t {
    CURLM *multi;                   /* NULL once closed */
    struct lp_request_t *transfers; /* requests in flight (their easy handle is in multi) */
    char *user_agent;               /* malloc'd copy */
    long connect_timeout_ms;
    long timeout_ms;                /* per transfer; 0: no limit */
    size_t max_response;            /* bytes of body */
    int verify;                     /* TLS peer and host verification */
    /* socket mode only */
    int socket_mode;
    lp_sockchange_t *changes;       /* malloc'd; records since the last socket_changes() */
    size_t nchanges, capchanges;
    long timer_ms;                  /* latest timeout libcurl asked for; -1: none */
    int timer_changed;              /* the timer callback ran since the last timer() */
    int record_failed;              /* a record could not be kept (out of memory) */
} lp_session_t;

/* Sets session into the table on top of the stack and registers the session
 * metatable; initialises libcurl once per process. Raises if that fails. */
LP_PRIVATE void lp_session_open(lua_State *L);

/* Advances every transfer without blocking and finishes the completed ones
 * (lp_request_finish). *running gets the number still running. Returns the
 * curl_multi_perform code (socket mode: the code of curl_multi_socket_action
 * for CURL_SOCKET_TIMEOUT, which starts new transfers). No Lua call happens
 * in here. */
LP_PRIVATE CURLMcode lp_session_drive(lp_session_t *s, int *running);

#endif

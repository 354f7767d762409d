/*
 * lp_session.h: the session userdata, owner of one libcurl multi handle.
 *
 * A session keeps connections alive between its requests and runs several
 * transfers at once (HTTP/2 multiplexing where the server offers it). It
 * never blocks except in session:poll(seconds).
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

typedef struct lp_session_t {
    CURLM *multi;                   /* NULL once closed */
    struct lp_request_t *transfers; /* requests in flight (their easy handle is in multi) */
    char *user_agent;               /* malloc'd copy */
    long connect_timeout_ms;
    long timeout_ms;                /* per transfer; 0: no limit */
    size_t max_response;            /* bytes of body */
    int verify;                     /* TLS peer and host verification */
} lp_session_t;

/* Sets session into the table on top of the stack and registers the session
 * metatable; initialises libcurl once per process. Raises if that fails. */
LP_PRIVATE void lp_session_open(lua_State *L);

/* Advances every transfer without blocking and finishes the completed ones
 * (lp_request_finish). *running gets the number still running. Returns the
 * curl_multi_perform code. No Lua call happens in here. */
LP_PRIVATE CURLMcode lp_session_drive(lp_session_t *s, int *running);

#endif

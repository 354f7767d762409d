/*
 * lp_request.h: the request userdata, one HTTP transfer (a libcurl easy
 * handle) in a session.
 *
 * The transfer starts when the request is made and is advanced by its
 * session; libcurl's callbacks only append to C buffers owned by the request
 * (no Lua call, so no Lua error can cross libcurl). When the transfer ends,
 * the easy handle goes back to libcurl and only the result stays.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_REQUEST_H
#define LP_REQUEST_H

#include <curl/curl.h>

#include "lp_buffer.h"
#include "lp_compat.h"
#include "lp_session.h"
#include "leadpipe.h"

#define LP_REQUEST_MT "leadpipe.request"

/* States; a new userdata is all zero, so it starts closed. */
#define LP_REQ_CLOSED 0
#define LP_REQ_RUNNING 1
#define LP_REQ_DONE 2

typedef struct lp_request_t {
    int state;
    CURL *easy;                  /* while running */
    struct curl_slist *headers;  /* while running */
    lp_session_t *session;       /* while running: the session whose multi holds easy */
    struct lp_request_t *prev;   /* in session->transfers */
    struct lp_request_t *next;
    lp_buffer_t head;            /* header lines of the last response */
    lp_buffer_t body;
    size_t max_response;
    long status;
    CURLcode result;
    int too_large;               /* LP_TOO_LARGE_* when a callback refused more data */
    int out_of_memory;           /* a callback could not grow a buffer */
    int aborted;                 /* the session was closed while it ran */
    int stream;                  /* request option stream = true: req:read() drains body */
    int paused;                  /* stream: on_body paused the transfer (a full piece waits) */
    char errbuf[CURL_ERROR_SIZE];
} lp_request_t;

/* Registers the request metatable. Stack: unchanged. */
LP_PRIVATE void lp_request_open(lua_State *L);

/* session:request(opts): the open session s is at index 1, the options at 2.
 * Pushes a running request and returns 1; raises on bad options or when out
 * of memory (after freeing whatever it took). */
LP_PRIVATE int lp_request_new(lua_State *L, lp_session_t *s);

/* The session saw the transfer of r end with rc: keeps the result, gives the
 * easy handle back and unlinks r from the session. */
LP_PRIVATE void lp_request_finish(lp_request_t *r, CURLcode rc);

/* The session is closing: stops the transfer of r and unlinks it; r then
 * reports kind "aborted". */
LP_PRIVATE void lp_request_abort(lp_request_t *r);

/* Receives one header of lp_headers_parse: name (lower case) and value
 * (trimmed), not NUL-terminated; sep is ", " for a new header line and " " for
 * a folded continuation of the header named. */
typedef void (*lp_header_fn)(void *ud, const char *name, size_t name_len, const char *value,
                             size_t value_len, const char *sep);

/* Parses a raw header block (status lines, header lines, folded lines, any
 * line ending) and calls fn for each header. Lower-cases names in place in
 * data; reads nothing outside data[0..len). Pure C, no Lua: fuzzed by
 * fuzz/headers_fuzz.c. */
LP_PRIVATE void lp_headers_parse(char *data, size_t len, lp_header_fn fn, void *ud);

#endif

/*
 * lp_request.c: the request userdata (see lp_request.h).
 *
 *   req:done()      -> boolean
 *   req:sent()      -> boolean: the request has gone out (libcurl wrote it: its
 *                      CURLINFO_REQUEST_SIZE is counted), or the transfer is over;
 *                      false while the connection is still being made
 *   req:read()      -> chunk, status   (stream = true: the body received so far, then
 *                      cleared, so a long body passes through in pieces of at most
 *                      max_response bytes (or one libcurl write, 16 KiB, if more):
 *                      the transfer pauses while a piece waits;
 *                      status is the response code once the headers are in, else 0)
 *   req:response(keep) -> status, headers, body | nil, message, kind
 *                      (keep: a non-empty 2xx body stays in C memory: body is a
 *                      leadpipe.body (lp_body.h) that core.decode parses in place)
 *   req:close()     idempotent; also __gc and __close
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lp_body.h"
#include "lp_request.h"
#include "lp_util.h"

/* Largest header block accepted for one response; beyond: kind "too_large". It
 * must stay below libcurl's own cap on a response's headers (300 KiB since
 * 7.85, CURLE_RECV_ERROR, which reads as "reset"), so that ours is the one that
 * ends an endless header block. A single line longer than libcurl's line cap
 * (CURL_MAX_HTTP_HEADER, 100 KiB) never reaches us: libcurl fails it first
 * (CURLE_OUT_OF_MEMORY before any body) and push_failure maps that to
 * "too_large" too. */
#define LP_HEADER_LIMIT (256 * 1024)

#define LP_TOO_LARGE_BODY 1
#define LP_TOO_LARGE_HEADERS 2

/* ===== LIFETIME ===== */

static void link_transfer(lp_request_t *r, lp_session_t *s)
{
    r->session = s;
    r->prev = NULL;
    r->next = s->transfers;
    if (s->transfers != NULL)
        s->transfers->prev = r;
    s->transfers = r;
}

static void unlink_transfer(lp_request_t *r)
{
    lp_session_t *s = r->session;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        s->transfers = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    r->session = NULL;
}

/* Frees the curl side of r (taking its easy handle out of the session first). */
static void release_transfer(lp_request_t *r)
{
    if (r->session != NULL) {
        curl_multi_remove_handle(r->session->multi, r->easy);
        unlink_transfer(r);
    }
    if (r->easy != NULL) {
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    if (r->headers != NULL) {
        curl_slist_free_all(r->headers);
        r->headers = NULL;
    }
}

/* Frees everything r holds; r is closed afterwards. Idempotent. */
static void request_release(lp_request_t *r)
{
    release_transfer(r);
    lp_buffer_free(&r->head);
    lp_buffer_free(&r->body);
    r->state = LP_REQ_CLOSED;
}

void lp_request_finish(lp_request_t *r, CURLcode rc)
{
    r->result = rc;
    if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status) != CURLE_OK)
        r->status = 0;
    release_transfer(r);
    r->state = LP_REQ_DONE;
}

void lp_request_abort(lp_request_t *r)
{
    release_transfer(r);
    r->aborted = 1;
    r->state = LP_REQ_DONE;
}

static lp_request_t *check_request(lua_State *L, int arg)
{
    lp_request_t *r = (lp_request_t *)luaL_checkudata(L, arg, LP_REQUEST_MT);
    if (r->state == LP_REQ_CLOSED)
        luaL_error(L, "attempt to use a closed request");
    return r;
}

/* Frees what r took, then raises "out of memory". */
static int fail_out_of_memory(lua_State *L, lp_request_t *r)
{
    request_release(r);
    return luaL_error(L, "out of memory");
}

/* ===== LIBCURL CALLBACKS (no Lua in here) ===== */

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    lp_request_t *r = (lp_request_t *)ud;
    size_t len = size * n;
    /* A status line starts a new response (after a 1xx one, or a proxy's CONNECT
     * answer): only the headers of the last one are kept. */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        lp_buffer_reset(&r->head);
    if (len > LP_HEADER_LIMIT - r->head.len) {
        r->too_large = LP_TOO_LARGE_HEADERS;
        return 0;
    }
    if (lp_buffer_append(&r->head, p, len) != 0) {
        r->out_of_memory = 1;
        return 0;
    }
    return len;
}

/* Before the first piece of a body: room for all of it (its Content-Length, when
 * the server sent one within max_response) and the decoder's padding, so that
 * the body is never copied to grow, nor to be parsed. Only a hint: failing is
 * harmless (lp_buffer_append grows the buffer as usual). */
static void reserve_body(lp_request_t *r)
{
#if LP_CURL_VER_GE(7, 55, 0)
    curl_off_t cl = -1;
    if (curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl > 0 &&
        (curl_off_t)r->max_response >= cl)
        (void)lp_buffer_reserve(&r->body, (size_t)cl + LP_BODY_PAD);
#else
    (void)r;
#endif
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    lp_request_t *r = (lp_request_t *)ud;
    size_t len = size * n;
    /* A stream holds at most max_response unread bytes (or one write): past that, the
     * transfer pauses until req:read() takes the piece (libcurl delivers this data
     * again then). */
    if (r->stream && (r->body.len >= r->max_response || len > r->max_response - r->body.len)) {
        if (r->body.len > 0) {
            r->paused = 1;
            return CURL_WRITEFUNC_PAUSE;
        }
        /* an empty buffer takes one libcurl write, whatever its size */
    } else if (len > r->max_response - r->body.len) {
        r->too_large = LP_TOO_LARGE_BODY;
        return 0;
    }
    if (r->body.cap == 0 && !r->stream)
        reserve_body(r);
    if (lp_buffer_append(&r->body, p, len) != 0) {
        r->out_of_memory = 1;
        return 0;
    }
    return len;
}

/* ===== MAKING A REQUEST ===== */

static const char *const request_fields[] = {
    "method", "url", "headers", "body", "timeout", "stream", NULL,
};

enum { LP_GET, LP_POST, LP_PUT, LP_PATCH, LP_DELETE, LP_HEAD };
static const char *const request_methods[] = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", NULL,
};

/* 1 when the len bytes at p hold a CR, LF or NUL (which would split a header). */
static int has_line_break(const char *p, size_t len)
{
    return memchr(p, '\r', len) != NULL || memchr(p, '\n', len) != NULL ||
           memchr(p, '\0', len) != NULL;
}

/* Raises unless the table at index t maps header names to strings or numbers
 * that are safe to send. Stack: unchanged. */
static void check_headers(lua_State *L, int arg, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        /* stack: ... name value */
        size_t len;
        const char *name;
        if (lua_type(L, -2) != LUA_TSTRING)
            lp_field_error(L, arg, "headers",
                           lua_pushfstring(L, "%s key instead of a header name",
                                           luaL_typename(L, -2)));
        name = lua_tolstring(L, -2, &len);
        if (len == 0 || has_line_break(name, len) || memchr(name, ':', len) != NULL ||
            memchr(name, ' ', len) != NULL || memchr(name, '\t', len) != NULL)
            lp_field_error(L, arg, "headers", "invalid header name");
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            lp_field_error(L, arg, "headers",
                           lua_pushfstring(L, "header '%s': string expected, got %s", name,
                                           luaL_typename(L, -1)));
        lua_tolstring(L, -1, &len); /* a number becomes a string on the stack only */
        if (has_line_break(lua_tostring(L, -1), len))
            lp_field_error(L, arg, "headers",
                           lua_pushfstring(L, "header '%s': line break in value", name));
        lua_pop(L, 1);
    }
}

/* Appends the headers of the (checked) table at index t to r->headers. */
static void add_headers(lua_State *L, lp_request_t *r, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        struct curl_slist *list;
        size_t len;
        const char *line;
        const char *value = lua_tolstring(L, -1, &len);
        /* "Name;" is how libcurl sends a header with an empty value. */
        if (len == 0)
            line = lua_pushfstring(L, "%s;", lua_tostring(L, -2));
        else
            line = lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), value);
        list = curl_slist_append(r->headers, line);
        if (list == NULL)
            fail_out_of_memory(L, r);
        r->headers = list;
        lua_pop(L, 2);
    }
}

/* Raises for a curl_easy_setopt failure after freeing what r took. */
static int fail_setopt(lua_State *L, lp_request_t *r, CURLcode rc, const char *what)
{
    if (rc == CURLE_OUT_OF_MEMORY)
        return fail_out_of_memory(L, r);
    request_release(r);
    return luaL_error(L, "request: cannot set %s: %s", what, curl_easy_strerror(rc));
}

#define LP_SETOPT(L, r, opt, val)                                    \
    do {                                                             \
        CURLcode rc_ = curl_easy_setopt((r)->easy, opt, val);        \
        if (rc_ != CURLE_OK)                                         \
            fail_setopt((L), (r), rc_, #opt);                        \
    } while (0)

/* Options that only make things better when libcurl supports them. */
static void set_optional_options(lp_request_t *r, const char *url)
{
    (void)curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    (void)curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Over TLS, wait for a connection being set up to the same host (ALPN says
     * soon whether it multiplexes) rather than open another. Not over plain
     * HTTP: there libcurl learns it only from the first response, which would
     * hold every other request back until then. */
    if (strncasecmp(url, "https://", 8) == 0)
        (void)curl_easy_setopt(r->easy, CURLOPT_PIPEWAIT, 1L);
}

int lp_request_new(lua_State *L, lp_session_t *s)
{
    const char *url, *method, *body;
    size_t body_len = 0, url_len = 0;
    long timeout_ms = s->timeout_ms;
    int m, has_headers, stream;
    lp_request_t *r;

    /* Check everything before taking any resource. */
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lp_check_fields(L, 2, request_fields);
    method = lp_opt_string(L, 2, "method", "GET", NULL);
    for (m = 0; request_methods[m] != NULL; m++) {
        if (strcmp(request_methods[m], method) == 0)
            break;
    }
    if (request_methods[m] == NULL)
        return lp_field_error(L, 2, "method", lua_pushfstring(L, "unknown method '%s'", method));
    url = lp_opt_string(L, 2, "url", NULL, &url_len);
    if (url == NULL)
        return lp_field_error(L, 2, "url", "string expected, got nil");
    if (has_line_break(url, url_len))
        return lp_field_error(L, 2, "url", "line break or NUL in url");
    body = lp_opt_string(L, 2, "body", NULL, &body_len);
    if (body != NULL && (m == LP_GET || m == LP_HEAD))
        lp_field_error(L, 2, "body", lua_pushfstring(L, "not allowed with %s", method));
    lua_getfield(L, 2, "timeout");
    if (!lua_isnil(L, -1))
        timeout_ms = lp_seconds_to_ms(lp_opt_seconds(L, 2, "timeout", 0, 0));
    lua_pop(L, 1);
    lua_getfield(L, 2, "stream");
    stream = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 2, "headers"); /* index 3 */
    has_headers = !lua_isnil(L, 3);
    if (has_headers) {
        if (lua_type(L, 3) != LUA_TTABLE)
            lp_field_error(L, 2, "headers",
                           lua_pushfstring(L, "table expected, got %s", luaL_typename(L, 3)));
        check_headers(L, 2, 3);
    }

    /* The userdata comes first, closed and with its metatable, so that __gc
     * frees whatever is taken below should anything raise. */
    r = (lp_request_t *)lua_newuserdata(L, sizeof *r); /* index 4 */
    memset(r, 0, sizeof *r);
    lp_buffer_init(&r->head);
    lp_buffer_init(&r->body);
    r->state = LP_REQ_CLOSED;
    luaL_getmetatable(L, LP_REQUEST_MT);
    lua_setmetatable(L, 4);
    r->max_response = s->max_response;
    r->stream = stream;

    r->easy = curl_easy_init();
    if (r->easy == NULL)
        fail_out_of_memory(L, r);
    if (has_headers)
        add_headers(L, r, 3);

    LP_SETOPT(L, r, CURLOPT_PRIVATE, (void *)r);
    LP_SETOPT(L, r, CURLOPT_ERRORBUFFER, r->errbuf);
    LP_SETOPT(L, r, CURLOPT_URL, url);
#if LP_CURL_VER_GE(7, 85, 0)
    if (curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
        LP_SETOPT(L, r, CURLOPT_PROTOCOLS_STR, "http"); /* a libcurl without TLS */
#else
    LP_SETOPT(L, r, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    LP_SETOPT(L, r, CURLOPT_FOLLOWLOCATION, 0L);
    LP_SETOPT(L, r, CURLOPT_NOSIGNAL, 1L);
    LP_SETOPT(L, r, CURLOPT_WRITEFUNCTION, on_body);
    LP_SETOPT(L, r, CURLOPT_WRITEDATA, (void *)r);
    LP_SETOPT(L, r, CURLOPT_HEADERFUNCTION, on_header);
    LP_SETOPT(L, r, CURLOPT_HEADERDATA, (void *)r);
    LP_SETOPT(L, r, CURLOPT_ACCEPT_ENCODING, "");
    LP_SETOPT(L, r, CURLOPT_USERAGENT, s->user_agent);
    LP_SETOPT(L, r, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
    LP_SETOPT(L, r, CURLOPT_TIMEOUT_MS, timeout_ms);
    LP_SETOPT(L, r, CURLOPT_SSL_VERIFYPEER, s->verify ? 1L : 0L);
    LP_SETOPT(L, r, CURLOPT_SSL_VERIFYHOST, s->verify ? 2L : 0L);
    /* a HEAD answer may announce a large Content-Length; a stream is read in pieces */
    if (m != LP_HEAD && !r->stream)
        LP_SETOPT(L, r, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_response);
    if (r->headers != NULL)
        LP_SETOPT(L, r, CURLOPT_HTTPHEADER, r->headers);
    set_optional_options(r, url);

    switch (m) {
    case LP_GET:
        LP_SETOPT(L, r, CURLOPT_HTTPGET, 1L);
        break;
    case LP_HEAD:
        LP_SETOPT(L, r, CURLOPT_NOBODY, 1L);
        break;
    case LP_POST:
        LP_SETOPT(L, r, CURLOPT_POST, 1L);
        break;
    default:
        LP_SETOPT(L, r, CURLOPT_CUSTOMREQUEST, method);
        break;
    }
    /* POST, PUT and PATCH always send a body (maybe empty, with Content-Length: 0);
     * DELETE only when given one. libcurl copies it. */
    if (body != NULL || m == LP_POST || m == LP_PUT || m == LP_PATCH) {
        LP_SETOPT(L, r, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        LP_SETOPT(L, r, CURLOPT_COPYPOSTFIELDS, body != NULL ? body : "");
    }

    {
        CURLMcode mc = curl_multi_add_handle(s->multi, r->easy);
        if (mc != CURLM_OK) {
            if (mc == CURLM_OUT_OF_MEMORY)
                fail_out_of_memory(L, r);
            request_release(r);
            luaL_error(L, "request: %s", curl_multi_strerror(mc));
        }
    }
    link_transfer(r, s);
    r->state = LP_REQ_RUNNING;

    /* The request keeps its session alive: uservalue { session }. */
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lp_setuservalue(L, 4);
    return 1;
}

/* ===== RESULTS ===== */

static const char *error_kind(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "resolve";
    case CURLE_COULDNT_CONNECT:
        return "connect";
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
#if LP_CURL_VER_GE(7, 73, 0)
    case CURLE_SSL_CLIENTCERT:
#endif
        return "tls";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2_STREAM:
        return "reset";
    case CURLE_FILESIZE_EXCEEDED:
        return "too_large";
    case CURLE_ABORTED_BY_CALLBACK:
        return "aborted";
    default:
        return "network";
    }
}

/* Pushes nil, message, kind for a failed transfer; returns 3. */
static int push_failure(lua_State *L, lp_request_t *r)
{
    const char *kind;
    lp_pushfail(L);
    if (r->aborted) {
        lua_pushliteral(L, "aborted: the session was closed");
        kind = "aborted";
    } else if (r->too_large == LP_TOO_LARGE_BODY || r->result == CURLE_FILESIZE_EXCEEDED) {
        char n[32];
        snprintf(n, sizeof n, "%lu", (unsigned long)r->max_response);
        lua_pushfstring(L, "response too large: the body exceeds max_response (%s bytes)", n);
        kind = "too_large";
    } else if (r->too_large == LP_TOO_LARGE_HEADERS) {
        lua_pushfstring(L, "response too large: the headers exceed %d bytes", LP_HEADER_LIMIT);
        kind = "too_large";
    } else if (r->result == CURLE_OUT_OF_MEMORY && r->body.len == 0) {
        /* libcurl refuses a header line over CURL_MAX_HTTP_HEADER this way */
        lua_pushliteral(L, "response too large: a header line exceeds libcurl's limit "
                           "(or memory ran out)");
        kind = "too_large";
    } else {
        size_t n = strlen(r->errbuf);
        while (n > 0 && (r->errbuf[n - 1] == '\n' || r->errbuf[n - 1] == '\r'))
            r->errbuf[--n] = '\0';
        if (n > 0)
            lua_pushfstring(L, "%s: %s", curl_easy_strerror(r->result), r->errbuf);
        else
            lua_pushstring(L, curl_easy_strerror(r->result));
        kind = error_kind(r->result);
        /* libcurl's own caps on header size (one line, or all of them) */
        if (strstr(r->errbuf, "header") != NULL &&
            (strstr(r->errbuf, "too large") != NULL || strstr(r->errbuf, "Too large") != NULL ||
             strstr(r->errbuf, "too long") != NULL || strstr(r->errbuf, "Too long") != NULL))
            kind = "too_large";
    }
    lua_pushstring(L, kind);
    return 3;
}

static int is_header_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Sets name = value in the table at t, joining a repeated header with ", ". */
static void set_header(lua_State *L, int t, const char *name, size_t name_len,
                       const char *value, size_t value_len, const char *sep)
{
    lua_pushlstring(L, name, name_len);
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushlstring(L, value, value_len);
    } else {
        lua_pushstring(L, sep);
        lua_pushlstring(L, value, value_len);
        lua_concat(L, 3);
    }
    lua_rawset(L, t);
}

/* Adds one parsed header to the table at the top of the stack (lp_headers_parse callback). */
static void add_parsed_header(void *ud, const char *name, size_t name_len, const char *value,
                              size_t value_len, const char *sep)
{
    lua_State *L = (lua_State *)ud;
    set_header(L, lua_gettop(L), name, name_len, value, value_len, sep);
}

/* Pushes a table of the response headers (see lp_headers_parse). */
static void push_headers(lua_State *L, lp_request_t *r)
{
    lua_newtable(L);
    if (r->head.data != NULL)
        lp_headers_parse(r->head.data, r->head.len, add_parsed_header, L);
}

void lp_headers_parse(char *data, size_t len, lp_header_fn fn, void *ud)
{
    char *p = data;
    char *end = p + len;
    const char *last = NULL; /* name of the last header, for folded lines */
    size_t last_len = 0;
    while (p < end) {
        char *eol = (char *)memchr(p, '\n', (size_t)(end - p));
        char *next = eol != NULL ? eol + 1 : end;
        char *e = eol != NULL ? eol : end;
        while (e > p && is_header_space(e[-1]))
            e--;
        if (p < e && (*p == ' ' || *p == '\t')) {
            while (p < e && is_header_space(*p))
                p++;
            if (last != NULL && p < e)
                fn(ud, last, last_len, p, (size_t)(e - p), " ");
        } else if (e - p >= 5 && memcmp(p, "HTTP/", 5) == 0) {
            last = NULL; /* the status line */
        } else {
            char *colon = (char *)memchr(p, ':', (size_t)(e - p));
            char *v, *q;
            if (colon != NULL && colon > p) {
                for (q = p; q < colon; q++) {
                    if (*q >= 'A' && *q <= 'Z')
                        *q = (char)(*q - 'A' + 'a');
                }
                v = colon + 1;
                while (v < e && is_header_space(*v))
                    v++;
                fn(ud, p, (size_t)(colon - p), v, (size_t)(e - v), ", ");
                last = p;
                last_len = (size_t)(colon - p);
            }
        }
        p = next;
    }
}

/* ===== METHODS ===== */

/* req:done() -> boolean: the transfer has ended (ok or not). */
static int lp_request_done(lua_State *L)
{
    lp_request_t *r = check_request(L, 1);
    lua_pushboolean(L, r->state == LP_REQ_DONE);
    return 1;
}

static int lp_request_sent(lua_State *L)
{
    lp_request_t *r = check_request(L, 1);
    long size = 0;
    if (r->state == LP_REQ_RUNNING &&
        curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &size) == CURLE_OK) {
        lua_pushboolean(L, size > 0);
        return 1;
    }
    lua_pushboolean(L, r->state == LP_REQ_DONE);
    return 1;
}

/* req:response(keep) -> status, headers, body | nil, message, kind. With keep,
 * a non-empty 2xx body (not a stream) is not copied into a string: body is a
 * leadpipe.body that takes the bytes over (lp_body.h; the request keeps none).
 * Raises while the transfer still runs, and "out of memory" if a buffer could
 * not grow. */
static int lp_request_response(lua_State *L)
{
    lp_request_t *r = check_request(L, 1);
    int keep = lua_toboolean(L, 2);
    if (r->state != LP_REQ_DONE)
        return luaL_error(L, "the request is still running (call done() first)");
    if (r->out_of_memory)
        return luaL_error(L, "out of memory");
    if (r->aborted || r->too_large || r->result != CURLE_OK)
        return push_failure(L, r);
    lua_pushinteger(L, (lua_Integer)r->status);
    push_headers(L, r);
    if (keep && r->status >= 200 && r->status < 300 && r->body.len > 0 && !r->stream)
        lp_body_push(L, &r->body); /* for core.decode(body), in place */
    else
        lua_pushlstring(L, r->body.data != NULL ? r->body.data : "", r->body.len);
    return 3;
}

/* req:read() -> chunk, status: hands out the body received so far and forgets it
 * (stream mode; without it, an empty chunk). Status is the response code once the
 * headers are in, else 0. Raises "out of memory" if a buffer could not grow. */
static int lp_request_read(lua_State *L)
{
    lp_request_t *r = check_request(L, 1);
    long status = r->status;
    if (r->out_of_memory)
        return luaL_error(L, "out of memory");
    if (r->state == LP_REQ_RUNNING &&
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (r->stream) {
        lua_pushlstring(L, r->body.data != NULL ? r->body.data : "", r->body.len);
        lp_buffer_reset(&r->body);
        if (r->paused && r->state == LP_REQ_RUNNING) {
            r->paused = 0;
            (void)curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may refill the buffer now */
        }
    } else {
        lua_pushliteral(L, "");
    }
    lua_pushinteger(L, (lua_Integer)status);
    return 2;
}

/* req:close(), __gc, __close: stops the transfer and frees everything. Idempotent. */
static int lp_request_close(lua_State *L)
{
    lp_request_t *r = (lp_request_t *)luaL_checkudata(L, 1, LP_REQUEST_MT);
    request_release(r);
    return 0;
}

static int lp_request_tostring(lua_State *L)
{
    lp_request_t *r = (lp_request_t *)luaL_checkudata(L, 1, LP_REQUEST_MT);
    if (r->state == LP_REQ_CLOSED)
        lua_pushliteral(L, "leadpipe.request (closed)");
    else
        lua_pushfstring(L, "leadpipe.request (%s): %p",
                        r->state == LP_REQ_RUNNING ? "running" : "done", (void *)r);
    return 1;
}

/* ===== REGISTRATION ===== */

static const luaL_Reg lp_request_methods[] = {
    {"done", lp_request_done},
    {"sent", lp_request_sent},
    {"response", lp_request_response},
    {"read", lp_request_read},
    {"close", lp_request_close},
    {NULL, NULL},
};

static const luaL_Reg lp_request_metamethods[] = {
    {"__gc", lp_request_close},
    {"__close", lp_request_close},
    {"__tostring", lp_request_tostring},
    {NULL, NULL},
};

void lp_request_open(lua_State *L)
{
    lp_newmetatable(L, LP_REQUEST_MT);
    lp_setfuncs(L, lp_request_metamethods, 0);
    lp_newlib(L, lp_request_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

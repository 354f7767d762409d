/*
 * leadpipe.c: entry point of the C module leadpipe.core.
 *
 * luaopen_leadpipe_core returns a fresh table (no globals) filled by each
 * concern's lp_*_open: sessions and requests (libcurl), the bodies they hand to the
 * decoders (lp_body), decode (simdjson or lua-cjson, with leadpipe's null and array
 * rules), where, the fingerprint table of client:changes (fpset), uuid/sleep/now. See
 * docs/internals.md for the contract. Lua wraps it in lua/leadpipe/.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <curl/curl.h>

#include "lp_body.h"
#include "lp_compat.h"
#include "lp_fpset.h"
#include "lp_inflate.h"
#include "lp_json.h"
#include "lp_request.h"
#include "lp_session.h"
#include "lp_util.h"
#include "lp_where.h"
#include "leadpipe.h"

LP_API int luaopen_leadpipe_core(lua_State *L);

/* Pushes "libcurl/<version> <TLS library> zlib/.. brotli/.. zstd/.. nghttp2/..".
 * Built from curl_version_info: curl_version() itself would also initialise the
 * LDAP and SASL libraries (to ask their versions), which leadpipe never uses. */
static void push_curl_version(lua_State *L)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "libcurl/");
    luaL_addstring(&b, v->version);
    if (v->ssl_version != NULL) {
        luaL_addchar(&b, ' ');
        luaL_addstring(&b, v->ssl_version);
    }
    if (v->libz_version != NULL) {
        luaL_addstring(&b, " zlib/");
        luaL_addstring(&b, v->libz_version);
    }
    if (v->age >= CURLVERSION_FIFTH && v->brotli_version != NULL) {
        luaL_addstring(&b, " brotli/");
        luaL_addstring(&b, v->brotli_version);
    }
#if LP_CURL_VER_GE(7, 72, 0)
    if (v->age >= CURLVERSION_EIGHTH && v->zstd_version != NULL) {
        luaL_addstring(&b, " zstd/");
        luaL_addstring(&b, v->zstd_version);
    }
#endif
#if LP_CURL_VER_GE(7, 66, 0)
    if (v->age >= CURLVERSION_SIXTH && v->nghttp2_version != NULL) {
        luaL_addstring(&b, " nghttp2/");
        luaL_addstring(&b, v->nghttp2_version);
    }
#endif
    luaL_pushresult(&b);
}

LP_API int luaopen_leadpipe_core(lua_State *L)
{
    lua_newtable(L);
    lp_session_open(L);
    lp_request_open(L);
    lp_body_open(L);
    lp_json_open(L);
    lp_inflate_open(L);
    lp_where_open(L);
    lp_fpset_open(L);
    lp_util_open(L);
    lua_pushliteral(L, LP_NAME " " LP_VERSION);
    lua_setfield(L, -2, "_VERSION");
    push_curl_version(L);
    lua_setfield(L, -2, "curl_version");
    return 1;
}

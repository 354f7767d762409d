/*
 * lp_util.c: core.uuid, core.sleep, core.now and the option-table helpers.
 *
 * uuid reads the kernel's random source: getrandom() where glibc has it,
 * /dev/urandom otherwise. sleep restarts nanosleep after a signal, so it
 * always sleeps the whole time asked for.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
#define LP_HAVE_GETRANDOM 1
#include <sys/random.h>
#endif

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

#include "lp_util.h"

/* Longest sleep accepted, in seconds (about 31 years): keeps time_t in range. */
#define LP_SLEEP_MAX 1e9

/* ===== RANDOM ===== */

/* Fills p with n random bytes; returns 0, or an errno value. */
static int random_bytes(unsigned char *p, size_t n)
{
    int fd;
#ifdef LP_HAVE_GETRANDOM
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOSYS)
                break;
            return errno;
        }
        p += got;
        n -= (size_t)got;
    }
    if (n == 0)
        return 0;
#endif
    do {
        fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errno;
    while (n > 0) {
        ssize_t got = read(fd, p, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            int err = got < 0 ? errno : EIO;
            close(fd);
            return err;
        }
        p += got;
        n -= (size_t)got;
    }
    close(fd);
    return 0;
}

/* core.uuid() -> string: a random (version 4) RFC 4122 UUID in lower case.
 * Raises when the system has no random bytes to give (it never happens on Linux). */
static int lp_util_uuid(lua_State *L)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    char out[36];
    int i, o = 0;
    int err = random_bytes(b, sizeof b);
    if (err != 0)
        return luaL_error(L, "uuid: cannot read random bytes: %s", strerror(err));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    lua_pushlstring(L, out, sizeof out);
    return 1;
}

/* ===== TIME ===== */

/* core.sleep(seconds) -> left: blocks the whole thread for that long
 * (0 <= seconds <= 1e9). A signal ends the sleep early and `left` is the time
 * that was still to sleep (0 otherwise): returning to Lua lets the
 * interpreter's SIGINT hook run, so Ctrl-C is not held up; callers that must
 * sleep the full time call again with `left`. */
static int lp_util_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    struct timespec req, rem;
    luaL_argcheck(L, s >= 0 && s <= LP_SLEEP_MAX, 1, "seconds out of range");
    req.tv_sec = (time_t)s;
    req.tv_nsec = (long)((s - (double)req.tv_sec) * 1e9);
    if (req.tv_nsec > 999999999L)
        req.tv_nsec = 999999999L;
    if (nanosleep(&req, &rem) != 0 && errno == EINTR) {
        lua_pushnumber(L, (lua_Number)rem.tv_sec + (lua_Number)rem.tv_nsec / 1e9);
        return 1;
    }
    lua_pushnumber(L, 0);
    return 1;
}

/* core.now() -> number: seconds on the monotonic clock (only differences mean anything). */
static int lp_util_now(lua_State *L)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return luaL_error(L, "now: clock_gettime failed: %s", strerror(errno));
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* ===== OPTION TABLES ===== */

int lp_field_error(lua_State *L, int arg, const char *name, const char *what)
{
    return luaL_argerror(L, arg, lua_pushfstring(L, "field '%s': %s", name, what));
}

static int field_type_error(lua_State *L, int arg, const char *name, const char *expected)
{
    const char *got = luaL_typename(L, -1);
    return lp_field_error(L, arg, name, lua_pushfstring(L, "%s expected, got %s", expected, got));
}

void lp_check_fields(lua_State *L, int arg, const char *const names[])
{
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {
        int i, known = 0;
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            luaL_argerror(L, arg, lua_pushfstring(L, "unexpected %s key in options",
                                                  luaL_typename(L, -1)));
            return;
        }
        for (i = 0; names[i] != NULL && !known; i++)
            known = strcmp(lua_tostring(L, -1), names[i]) == 0;
        if (!known) {
            luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'", lua_tostring(L, -1)));
            return;
        }
    }
}

double lp_opt_seconds(lua_State *L, int arg, const char *name, double def, double min)
{
    double s = def;
    lua_getfield(L, arg, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            field_type_error(L, arg, name, "number");
        s = (double)lua_tonumber(L, -1);
        if (!(s >= min && s <= LP_SLEEP_MAX))
            lp_field_error(L, arg, name, min > 0 ? "positive number of seconds expected"
                                                 : "non-negative number of seconds expected");
    }
    lua_pop(L, 1);
    return s;
}

lua_Integer lp_opt_integer(lua_State *L, int arg, const char *name, lua_Integer def,
                           lua_Integer min)
{
    lua_Integer v = def;
    lua_getfield(L, arg, name);
    if (!lua_isnil(L, -1)) {
        lua_Number n;
        int ok;
        if (lua_type(L, -1) != LUA_TNUMBER)
            field_type_error(L, arg, name, "integer");
        n = lua_tonumber(L, -1);
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, -1)) {
            v = lua_tointeger(L, -1);
            ok = 1;
        } else {
            ok = lua_numbertointeger(n, &v) && (lua_Number)v == n;
        }
#else
        ok = n > -9007199254740992.0 && n < 9007199254740992.0 &&
             (lua_Number)(v = (lua_Integer)n) == n;
#endif
        if (!ok)
            field_type_error(L, arg, name, "integer");
        if (v < min)
            lp_field_error(L, arg, name, lua_pushfstring(L, "must be at least %d", (int)min));
    }
    lua_pop(L, 1);
    return v;
}

int lp_opt_boolean(lua_State *L, int arg, const char *name, int def)
{
    int b = def;
    lua_getfield(L, arg, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TBOOLEAN)
            field_type_error(L, arg, name, "boolean");
        b = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return b;
}

const char *lp_opt_string(lua_State *L, int arg, const char *name, const char *def, size_t *len)
{
    const char *s = def;
    lua_getfield(L, arg, name);
    if (lua_isnil(L, -1)) {
        if (len != NULL)
            *len = def != NULL ? strlen(def) : 0;
    } else {
        if (lua_type(L, -1) != LUA_TSTRING)
            field_type_error(L, arg, name, "string");
        s = lua_tolstring(L, -1, len);
    }
    lua_pop(L, 1);
    return s;
}

long lp_seconds_to_ms(double seconds)
{
    double ms = seconds * 1000.0;
    long whole;
    if (!(ms > 0))
        return 0;
    if (ms >= (double)LONG_MAX)
        return LONG_MAX;
    whole = (long)ms;
    if ((double)whole < ms)
        whole++;
    return whole;
}

/* ===== REGISTRATION ===== */

static const luaL_Reg lp_util_funcs[] = {
    {"uuid", lp_util_uuid},
    {"sleep", lp_util_sleep},
    {"now", lp_util_now},
    {NULL, NULL},
};

void lp_util_open(lua_State *L)
{
    lp_setfuncs(L, lp_util_funcs, 0);
}

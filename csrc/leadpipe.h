/*
 * leadpipe.h: build-wide definitions of leadpipe.core (version, symbol visibility).
 *
 * Only luaopen_leadpipe_core is exported from core.so; every cross-file lp_*
 * function is declared LP_PRIVATE so that it stays hidden even when the object
 * files are linked into a larger program.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LEADPIPE_H
#define LEADPIPE_H

/* The version comes from lua/leadpipe/version.lua, the one place it is written: the
 * Makefile (and the rockspecs) pass it as -DLP_VERSION="\"x.y.z\"". */
#ifndef LP_VERSION
#error "LP_VERSION is not defined: build with make (it reads lua/leadpipe/version.lua)"
#endif
#define LP_NAME "leadpipe.core"

#if defined(_WIN32)
#define LP_API __declspec(dllexport)
#define LP_PRIVATE
#elif defined(__GNUC__)
#define LP_API __attribute__((visibility("default")))
#define LP_PRIVATE __attribute__((visibility("hidden")))
#else
#define LP_API
#define LP_PRIVATE
#endif

#endif

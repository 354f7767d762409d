# leadpipe: Lua client for the Leadpipe Intent Audiences API.
#
#   make demo       build, start the fake API (unless LEADPIPE_API_KEY is set), run the quickstart
#   make test       deps + build + lint + every spec suite on Lua 5.1-5.4 and LuaJIT;
#                   ends with one line of totals, "N passed, N failed"
#   make spec       the suite on one Lua (LUA_VERSION=5.4 by default; 5.1 5.2 5.3 jit)
#   make bench      side-by-side benchmark vs curl+jq, Python, plain Lua (not in `make test`)
#   make valgrind   the specs under valgrind (leaks and errors in the C modules)
#   make asan       the C modules built with ASan+UBSan, every spec run against them
#   make fuzz       libFuzzer harnesses of fuzz/ (clang), FUZZ_RUNS executions each
#
# Outputs go under build/$(LUA_VERSION)/, never into the source tree.

LUA_VERSION ?= 5.4
LUA         ?= lua$(LUA_VERSION)
LUA_PC      ?= lua$(LUA_VERSION)
PREFIX      ?= /usr/local
# LuaJIT loads modules from the 5.1 directories.
LUA_ABI      = $(if $(filter jit,$(LUA_VERSION)),5.1,$(LUA_VERSION))
LUA_LIBDIR  ?= $(PREFIX)/lib/lua/$(LUA_ABI)
LUA_SHAREDIR ?= $(PREFIX)/share/lua/$(LUA_ABI)
BINDIR      ?= $(PREFIX)/bin

PKG_CONFIG  ?= pkg-config
CC          ?= cc
CXX         ?= c++
# LUA_VERSION=jit builds for LuaJIT (LUA=luajit, pkg-config luajit).
LUA_INCDIR  ?=
LUA_CFLAGS  ?= $(if $(LUA_INCDIR),-I$(LUA_INCDIR),$(shell $(PKG_CONFIG) --cflags $(LUA_PC) 2>/dev/null))
CURL_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
CURL_LIBS   ?= $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null || echo -lcurl)
MHD_CFLAGS  ?= $(shell $(PKG_CONFIG) --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS    ?= $(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
# simdjson (C++17) for core.decode: 1 when pkg-config or the header finds it, else the
# lua-cjson decoder. Either way the build goes to build/<version> (see BUILD below).
SIMDJSON_PC ?= simdjson
SIMDJSON_H  ?= /usr/include/simdjson.h
SIMDJSON    ?= $(shell $(PKG_CONFIG) --exists $(SIMDJSON_PC) 2>/dev/null && echo 1 || \
	{ test -f $(SIMDJSON_H) && echo 1; } || echo 0)
SIMDJSON_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags $(SIMDJSON_PC) 2>/dev/null)
SIMDJSON_LIBS   ?= $(shell $(PKG_CONFIG) --libs $(SIMDJSON_PC) 2>/dev/null || echo -lsimdjson)

OPTFLAGS    ?= -O2 -g
# -Werror in the builds of this checkout (development, CI); the rock builds on users'
# machines go without it (WERROR=), so that a newer compiler's new warning cannot fail an
# install.
WERROR      ?= -Werror
WARNFLAGS   ?= -Wall -Wextra $(WERROR)
CFLAGS      ?= $(OPTFLAGS)
# The version, written once in lua/leadpipe/version.lua.
VERSION     := $(shell sed -n 's/^return "\(.*\)"$$/\1/p' lua/leadpipe/version.lua)
VERSION_DEF  = -DLP_VERSION='"$(VERSION)"'
ALL_CFLAGS   = -std=gnu99 -fPIC $(WARNFLAGS) $(CFLAGS) $(LUA_CFLAGS) -Icsrc $(SJ_DEFS) $(VERSION_DEF)
CXXFLAGS    ?= $(OPTFLAGS)
ALL_CXXFLAGS = -std=c++17 -fPIC $(WARNFLAGS) -O2 $(CXXFLAGS) $(LUA_CFLAGS) -Icsrc $(SJ_DEFS) $(SIMDJSON_CFLAGS) \
	$(VERSION_DEF)
LIBFLAG     ?= -shared
LDFLAGS     ?=

ifeq ($(SIMDJSON),1)
SJ_DEFS      = -DLP_HAVE_SIMDJSON
SJ_SRC       = $(wildcard csrc/*.cpp)
SJ_LIBS      = $(SIMDJSON_LIBS) -lstdc++
else
SJ_DEFS      =
SJ_SRC       =
SJ_LIBS      =
endif
# One build directory per Lua version, whichever decoder it holds: what this make computes
# before `deps` installs simdjson (the first `make demo` on a fresh machine) and what the
# sub-make that builds after it computes are the same directory. SIMDJSON=0 given on the
# command line or in the environment asks for the lua-cjson decoder beside the other one,
# in build/<version>-cjson.
BUILD       ?= build/$(LUA_VERSION)$(if $(filter file,$(origin SIMDJSON)),,$(if $(filter 0,$(SIMDJSON)),-cjson))
OBJ          = $(BUILD)/obj
# What the objects are made with besides their sources, recorded in $(CONFIG) and rewritten
# only when it changes: then every object is rebuilt (a build directory that holds the
# lua-cjson decoder gets simdjson once it is installed, and back). Warning flags change no
# object and are not part of it.
quote        = '$(subst ','\'',$(1))'
BUILD_CONFIG = $(CC) $(CXX) $(SJ_DEFS) $(CFLAGS) $(CXXFLAGS) $(LUA_CFLAGS) $(CURL_CFLAGS) $(SIMDJSON_CFLAGS)
CONFIG       = $(OBJ)/config

CORE_SRC     = $(wildcard csrc/*.c)
CORE_HDR     = $(wildcard csrc/*.h)
MOCK_SRC     = $(wildcard csrc/mock/*.c)
MOCK_HDR     = $(wildcard csrc/mock/*.h)
CORE_OBJ     = $(patsubst csrc/%.c,$(OBJ)/core/%.o,$(CORE_SRC)) \
	$(patsubst csrc/%.cpp,$(OBJ)/core/%.o,$(SJ_SRC))
MOCK_OBJ     = $(patsubst csrc/mock/%.c,$(OBJ)/mock/%.o,$(MOCK_SRC))
CORE_SO      = $(BUILD)/leadpipe/core.so
MOCK_SO      = $(BUILD)/leadpipe/mockserver.so

# The Lua versions `make test` runs the whole suite on (jit: Debian's luajit2, pkg-config
# name `luajit`, the LuaJIT that nginx's Lua module links and the specs use for Neovim too;
# it conflicts with the `luajit` package).
TEST_LUAS   ?= 5.1 5.2 5.3 5.4 jit
# ... and once more on Lua 5.4 against the C modules built with ASan+UBSan (`make asan`),
# when the compiler has libasan.
TEST_ASAN   ?= $(if $(wildcard $(shell $(CC) -print-file-name=libasan.so)),1,0)
LUA_PACKAGES = lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
	lua5.4 liblua5.4-dev luajit2 libluajit2-5.1-dev

# Debian packages the project needs; `make deps` installs the missing ones.
DEB_PACKAGES ?= $(LUA_PACKAGES) lua-cjson lua-argparse lua-busted lua-check \
	libcurl4-openssl-dev libmicrohttpd-dev zlib1g-dev libsimdjson-dev g++ pkg-config cppcheck valgrind \
	curl tmux python3 \
	nginx-light libnginx-mod-http-lua openssl neovim lua-luv jq clang libclang-rt-14-dev luarocks

# busted's runner, a Lua script (Debian's lua-busted), run by the Lua under test.
BUSTED_BIN  ?= $(shell command -v busted 2>/dev/null || echo busted)
BUSTED       = $(LUA) $(BUSTED_BIN) --cpath="./$(BUILD)/?.so"
LUA_ENV      = LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./$(BUILD)/?.so;;"

.PHONY: rock rock-install rock-mock rock-mock-install all deps build test check lint spec valgrind asan \
	fuzz fuzz-smoke bench demo env install uninstall clean FORCE

all: build

# DEPS_CMD gets the package names; tools/first-run.sh replaces it to play a machine where
# `deps` installs simdjson only after this file was read.
DEPS_CMD    ?= sh tools/deps.sh
deps:
	@LUA_VERSION=$(LUA_VERSION) $(DEPS_CMD) $(DEB_PACKAGES)

build: $(if $(CORE_SRC),$(CORE_SO)) $(if $(MOCK_SRC),$(MOCK_SO))

$(CONFIG): FORCE
	@mkdir -p $(dir $@)
	@echo $(call quote,$(BUILD_CONFIG)) | cmp -s - $@ || echo $(call quote,$(BUILD_CONFIG)) > $@

$(OBJ)/core/%.o: csrc/%.c $(CORE_HDR) $(CONFIG)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CURL_CFLAGS) -c $< -o $@

$(OBJ)/core/%.o: csrc/%.cpp $(CORE_HDR) $(CONFIG)
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) -c $< -o $@

$(OBJ)/mock/%.o: csrc/mock/%.c $(MOCK_HDR) csrc/lp_compat.h csrc/lp_util.h csrc/leadpipe.h $(CONFIG)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc/mock $(MHD_CFLAGS) -c $< -o $@

$(CORE_SO): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $^ $(CURL_LIBS) $(SJ_LIBS) -lz

# The fake shares leadpipe.core's option helpers (lp_util.c; hidden symbols in each .so).
MOCK_SHARED  = $(OBJ)/core/lp_util.o

$(MOCK_SO): $(MOCK_OBJ) $(MOCK_SHARED)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $^ $(MHD_LIBS) -lz -lpthread

lint:
	luacheck -q $(wildcard lua spec bench examples tools bin/leadpipe)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance $(VERSION_DEF) \
		--inline-suppr --suppress=missingIncludeSystem -I csrc -I csrc/mock \
		$(CORE_SRC) $(MOCK_SRC)
	cppcheck --quiet --error-exitcode=1 --language=c++ --std=c++17 \
		--enable=warning,portability,performance --inline-suppr --suppress=missingIncludeSystem \
		-DLP_HAVE_SIMDJSON $(VERSION_DEF) -I csrc $(wildcard csrc/*.cpp)

# One busted run over spec/; tools/run-specs.sh ends it with the totals line.
spec: build
	@$(LUA_ENV) LEADPIPE_LUA=$(LUA) LEADPIPE_BUILD=$(BUILD) sh tools/run-specs.sh $(BUSTED)

# Every suite on every Lua in TEST_LUAS; the last line is the totals over all of them.
# The nginx and Neovim specs run LuaJIT: build/jit is built in any case.
test: deps
	@$(MAKE) --no-print-directory build
	@$(if $(filter jit,$(LUA_VERSION)),,$(MAKE) --no-print-directory build LUA_VERSION=jit)
	@$(MAKE) --no-print-directory lint
	@TEST_LUAS="$(TEST_LUAS)" TEST_ASAN="$(TEST_ASAN)" sh tools/test-all.sh $(MAKE)

valgrind: build
	@$(LUA_ENV) LEADPIPE_LUA=$(LUA) LEADPIPE_BUILD=$(BUILD) LEADPIPE_VALGRIND=1 \
		sh tools/valgrind.sh $(BUSTED)

# ===== sanitizers and fuzzing (docs/internals.md, "Sanitizers and fuzzing") =====
# make asan: core.so and mockserver.so built with -fsanitize=address,undefined under
# build/asan-<version>, then every spec with libasan preloaded into the (uninstrumented)
# interpreter. Leaks are valgrind's job (make valgrind): the interpreter exits without
# closing its state, so LeakSanitizer is off. Any ASan report or UBSan runtime error aborts
# the process, which fails its spec. Child processes that are not our Lua (curl, python3)
# must not inherit LD_PRELOAD: tools/asan-bin, first in PATH here, runs them without it.
ASAN_BUILD  ?= build/asan-$(LUA_VERSION)
ASAN_FLAGS  ?= -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_LIB    ?= $(shell $(CC) -print-file-name=libasan.so)
ASAN_ENV     = PATH="$(CURDIR)/tools/asan-bin:$$PATH" LD_PRELOAD="$(ASAN_LIB)" \
	ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:verify_asan_link_order=0:detect_stack_use_after_return=0" \
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

asan:
	@$(MAKE) --no-print-directory build BUILD=$(ASAN_BUILD) OPTFLAGS="-O1 -g" \
		CFLAGS="-O1 -g $(ASAN_FLAGS)" LDFLAGS="$(ASAN_FLAGS)"
	@nm -D $(ASAN_BUILD)/leadpipe/core.so | grep -q __asan_init || \
		{ echo "asan: $(ASAN_BUILD)/leadpipe/core.so is not instrumented" >&2; exit 1; }
	@$(ASAN_ENV) $(MAKE) --no-print-directory spec BUILD=$(ASAN_BUILD) OPTFLAGS="-O1 -g" \
		CFLAGS="-O1 -g $(ASAN_FLAGS)" LDFLAGS="$(ASAN_FLAGS)"

# make fuzz: one libFuzzer binary per harness in fuzz/ (a harness whose C function is not
# on this branch is skipped), each run FUZZ_RUNS times from its corpus in fuzz/corpus/.
# fuzz-smoke is the short run `make spec` does through spec/fuzz_spec.lua.
FUZZ_CC     ?= clang
FUZZ_RUNS   ?= 1000000
FUZZ_BUILD  ?= build/fuzz
FUZZ_LUA_PC ?= lua5.4
FUZZ_FLAGS   = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -DLP_VERSION=\"$(VERSION)\" \
	-Icsrc $(shell $(PKG_CONFIG) --cflags $(FUZZ_LUA_PC) libcurl 2>/dev/null)
FUZZ_LIBS    = $(shell $(PKG_CONFIG) --libs $(FUZZ_LUA_PC) libcurl 2>/dev/null) -lz -lm -ldl

fuzz:
	@FUZZ_CC="$(FUZZ_CC)" FUZZ_FLAGS="$(FUZZ_FLAGS)" FUZZ_LIBS="$(FUZZ_LIBS)" \
		FUZZ_BUILD="$(FUZZ_BUILD)" sh fuzz/run.sh $(FUZZ_RUNS)

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_RUNS=20000

# The side-by-side comparison (bench/harness.lua); LuaJIT joins when it is installed.
# Knobs: BENCH_QUICK=1, BENCH_REPS=N, BENCH_SLOW_REPS=N, BENCH_STRICT=1 (see tools/bench.sh).
bench: build
	@$(if $(filter jit,$(LUA_VERSION)),,$(MAKE) --no-print-directory build LUA_VERSION=jit)  # LuaJIT contender, nginx
	@$(LUA_ENV) LEADPIPE_BUILD=$(BUILD) sh tools/bench.sh $(LUA)

demo: deps
	@$(MAKE) --no-print-directory build
	@$(LUA_ENV) $(LUA) examples/quickstart.lua

# `eval "$$(make env)"`: LUA_PATH and LUA_CPATH for this tree's build of LUA_VERSION, so that
# your own scripts find leadpipe without installing it (build first: make build).
env:
	@echo 'export LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;"; export LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;"'

# `make install PREFIX=... LUA_VERSION=...`: the modules, the C core, the fake API when it
# was built, and a `leadpipe` command whose shebang names that Lua and which finds the
# modules under PREFIX even when PREFIX is not on the interpreter's default search path.
LUA_FILES = $(shell cd lua && find leadpipe -name '*.lua' | sort)

install: build
	install -d $(DESTDIR)$(LUA_LIBDIR)/leadpipe $(DESTDIR)$(BINDIR)
	install -m 0755 $(CORE_SO) $(DESTDIR)$(LUA_LIBDIR)/leadpipe/
	@if [ -f $(MOCK_SO) ]; then echo "install $(MOCK_SO)"; \
		install -m 0755 $(MOCK_SO) $(DESTDIR)$(LUA_LIBDIR)/leadpipe/; fi
	@for f in $(LUA_FILES); do install -D -m 0644 lua/$$f $(DESTDIR)$(LUA_SHAREDIR)/$$f || exit 1; done
	sed -e '1s|.*|#!/usr/bin/env $(LUA)|' \
		-e 's|^local INSTALLED = nil.*|local INSTALLED = { path = "$(LUA_SHAREDIR)/?.lua;$(LUA_SHAREDIR)/?/init.lua", cpath = "$(LUA_LIBDIR)/?.so" }|' \
		bin/leadpipe > $(DESTDIR)$(BINDIR)/leadpipe
	chmod 0755 $(DESTDIR)$(BINDIR)/leadpipe

# ===== LuaRocks (leadpipe-*.rockspec: build type "make") =====
# luarocks passes the Lua's include directory and its install directories; the build goes
# to build/rock-<lua>, with simdjson when it is installed (pkg-config), cjson otherwise.
# `rock`/`rock-install`: the library, its C core and the command (no libmicrohttpd needed).
# `rock-mock`/`rock-mock-install`: the fake API (leadpipe.mock + leadpipe.mockserver).
ROCK_BUILD   = build/rock-$(notdir $(LUA))
INST_LIBDIR ?= $(LUA_LIBDIR)
INST_LUADIR ?= $(LUA_SHAREDIR)
ROCK_LUA     = $(filter-out leadpipe/mock.lua,$(LUA_FILES))

rock:
	@$(MAKE) --no-print-directory $(ROCK_BUILD)/leadpipe/core.so BUILD=$(ROCK_BUILD) WERROR=

rock-install:
	install -d $(INST_LIBDIR)/leadpipe
	install -m 0755 $(ROCK_BUILD)/leadpipe/core.so $(INST_LIBDIR)/leadpipe/
	@for f in $(ROCK_LUA); do install -D -m 0644 lua/$$f $(INST_LUADIR)/$$f || exit 1; done

rock-mock:
	@$(MAKE) --no-print-directory $(ROCK_BUILD)/leadpipe/mockserver.so BUILD=$(ROCK_BUILD) WERROR=

rock-mock-install:
	install -d $(INST_LIBDIR)/leadpipe
	install -m 0755 $(ROCK_BUILD)/leadpipe/mockserver.so $(INST_LIBDIR)/leadpipe/
	install -D -m 0644 lua/leadpipe/mock.lua $(INST_LUADIR)/leadpipe/mock.lua

# ... and the folders left empty below PREFIX (lib/lua/<ver>, share/lua/<ver>, bin and their
# parents while empty; never PREFIX itself nor anything outside it).
uninstall:
	rm -rf $(DESTDIR)$(LUA_LIBDIR)/leadpipe $(DESTDIR)$(LUA_SHAREDIR)/leadpipe $(DESTDIR)$(BINDIR)/leadpipe
	@top='$(DESTDIR)$(PREFIX)'; top=$${top%/}; \
	for d in '$(DESTDIR)$(LUA_LIBDIR)' '$(DESTDIR)$(LUA_SHAREDIR)' '$(DESTDIR)$(BINDIR)'; do \
		d=$${d%/}; \
		while case "$$d" in "$$top"/*) true ;; *) false ;; esac && rmdir "$$d" 2>/dev/null; do \
			echo "rmdir $$d"; d=$$(dirname "$$d"); \
		done; \
	done

clean:
	rm -rf build

# leadpipe: Lua client for the Leadpipe Intent Audiences API.
#
#   make demo       build, start the fake API (unless LEADPIPE_API_KEY is set), run the quickstart
#   make test       deps + build + lint + every spec suite; ends with "N passed, N failed"
#   make bench      benchmarks (never part of `make test`)
#   make valgrind   the specs under valgrind (leaks and errors in the C modules)
#
# Outputs go under build/$(LUA_VERSION)/, never into the source tree.

LUA_VERSION ?= 5.4
LUA         ?= lua$(LUA_VERSION)
LUA_PC      ?= lua$(LUA_VERSION)
PREFIX      ?= /usr/local
LUA_LIBDIR  ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_SHAREDIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
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
# simdjson (C++17) for core.decode: 1 when pkg-config or the header finds it; SIMDJSON=0 forces
# the lua-cjson decoder (built under build/<version>-cjson, so both builds can be tested).
SIMDJSON    ?= $(shell $(PKG_CONFIG) --exists simdjson 2>/dev/null && echo 1 || \
	{ test -f /usr/include/simdjson.h && echo 1; } || echo 0)
SIMDJSON_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags simdjson 2>/dev/null)
SIMDJSON_LIBS   ?= $(shell $(PKG_CONFIG) --libs simdjson 2>/dev/null || echo -lsimdjson)

OPTFLAGS    ?= -O2 -g
WARNFLAGS   ?= -Wall -Wextra -Werror
CFLAGS      ?= $(OPTFLAGS)
ALL_CFLAGS   = -std=gnu99 -fPIC $(WARNFLAGS) $(CFLAGS) $(LUA_CFLAGS) -Icsrc $(SJ_DEFS)
CXXFLAGS    ?= $(OPTFLAGS)
ALL_CXXFLAGS = -std=c++17 -fPIC $(WARNFLAGS) -O2 $(CXXFLAGS) $(LUA_CFLAGS) -Icsrc $(SJ_DEFS) $(SIMDJSON_CFLAGS)
LIBFLAG     ?= -shared
LDFLAGS     ?=

ifeq ($(SIMDJSON),1)
SJ_DEFS      = -DLP_HAVE_SIMDJSON
SJ_SRC       = $(wildcard csrc/*.cpp)
SJ_LIBS      = $(SIMDJSON_LIBS) -lstdc++
BUILD       ?= build/$(LUA_VERSION)
else
SJ_DEFS      =
SJ_SRC       =
SJ_LIBS      =
BUILD       ?= build/$(LUA_VERSION)-cjson
endif
OBJ          = $(BUILD)/obj

CORE_SRC     = $(wildcard csrc/*.c)
CORE_HDR     = $(wildcard csrc/*.h)
MOCK_SRC     = $(wildcard csrc/mock/*.c)
MOCK_HDR     = $(wildcard csrc/mock/*.h)
CORE_OBJ     = $(patsubst csrc/%.c,$(OBJ)/core/%.o,$(CORE_SRC)) \
	$(patsubst csrc/%.cpp,$(OBJ)/core/%.o,$(SJ_SRC))
MOCK_OBJ     = $(patsubst csrc/mock/%.c,$(OBJ)/mock/%.o,$(MOCK_SRC))
CORE_SO      = $(BUILD)/leadpipe/core.so
MOCK_SO      = $(BUILD)/leadpipe/mockserver.so

# Debian packages the project needs; `make deps` installs the missing ones.
DEB_PACKAGES ?= lua$(LUA_VERSION) liblua$(LUA_VERSION)-dev lua-cjson lua-busted lua-check \
	libcurl4-openssl-dev libmicrohttpd-dev zlib1g-dev pkg-config cppcheck valgrind curl tmux python3

BUSTED       = $(LUA) /usr/bin/busted --cpath="./$(BUILD)/?.so"
LUA_ENV      = LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./$(BUILD)/?.so;;"

.PHONY: all deps build test check lint spec valgrind bench demo install uninstall clean

all: build

deps:
	@LUA_VERSION=$(LUA_VERSION) sh tools/deps.sh $(DEB_PACKAGES)

build: $(if $(CORE_SRC),$(CORE_SO)) $(if $(MOCK_SRC),$(MOCK_SO))

$(OBJ)/core/%.o: csrc/%.c $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CURL_CFLAGS) -c $< -o $@

$(OBJ)/core/%.o: csrc/%.cpp $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) -c $< -o $@

$(OBJ)/mock/%.o: csrc/mock/%.c $(MOCK_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc/mock $(MHD_CFLAGS) -c $< -o $@

$(CORE_SO): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $^ $(CURL_LIBS) $(SJ_LIBS)

$(MOCK_SO): $(MOCK_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $^ $(MHD_LIBS) -lz -lpthread

lint:
	luacheck -q $(wildcard lua spec bench examples tools bin/leadpipe)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
		--inline-suppr --suppress=missingIncludeSystem -I csrc -I csrc/mock \
		$(CORE_SRC) $(MOCK_SRC)
	cppcheck --quiet --error-exitcode=1 --language=c++ --std=c++17 \
		--enable=warning,portability,performance --inline-suppr --suppress=missingIncludeSystem \
		-DLP_HAVE_SIMDJSON -I csrc $(wildcard csrc/*.cpp)

# One busted run over spec/; tools/summary.sh turns its output into the totals line.
spec: build
	@$(LUA_ENV) LEADPIPE_LUA=$(LUA) LEADPIPE_BUILD=$(BUILD) sh tools/run-specs.sh $(BUSTED)

test: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory spec

valgrind: build
	@$(LUA_ENV) LEADPIPE_LUA=$(LUA) LEADPIPE_BUILD=$(BUILD) LEADPIPE_VALGRIND=1 \
		sh tools/valgrind.sh $(BUSTED)

bench: build
	@$(LUA_ENV) LEADPIPE_BUILD=$(BUILD) sh tools/bench.sh $(LUA)

demo: deps
	@$(MAKE) --no-print-directory build
	@$(LUA_ENV) $(LUA) examples/quickstart.lua

install: build
	install -d $(DESTDIR)$(LUA_LIBDIR)/leadpipe $(DESTDIR)$(LUA_SHAREDIR)/leadpipe $(DESTDIR)$(BINDIR)
	install -m 0755 $(CORE_SO) $(MOCK_SO) $(DESTDIR)$(LUA_LIBDIR)/leadpipe/
	install -m 0644 lua/leadpipe/*.lua $(DESTDIR)$(LUA_SHAREDIR)/leadpipe/
	@if [ -f bin/leadpipe ]; then install -m 0755 bin/leadpipe $(DESTDIR)$(BINDIR)/leadpipe; fi

uninstall:
	rm -rf $(DESTDIR)$(LUA_LIBDIR)/leadpipe $(DESTDIR)$(LUA_SHAREDIR)/leadpipe $(DESTDIR)$(BINDIR)/leadpipe

clean:
	rm -rf build

# pyspy build. `make` builds the tools and libraries into build/release;
# `make check` installs missing Debian packages, builds the sanitizer
# build into build/asan and runs every test against it.

CC       ?= gcc
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILDDIR ?= build/release
SAN      ?= 0

# Hidden by default: libpyspy.so exports only what include/pyspy.h marks
# PYSPY_API (tests/test_library.py checks the list).
CPPFLAGS_ALL := -Iinclude -I. -D_GNU_SOURCE -MMD -MP -I$(BUILDDIR)/gen
CFLAGS_ALL   := -std=c11 -Wall -Wextra -Werror -g -fPIC -pthread \
                -fno-omit-frame-pointer -fvisibility=hidden
ifeq ($(SAN),1)
CFLAGS_ALL  += -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined
SAN_LDFLAGS := -fsanitize=address,undefined
else
CFLAGS_ALL  += -O2
SAN_LDFLAGS :=
endif
LDFLAGS_ALL := $(SAN_LDFLAGS)
CFLAGS_ALL  += $(CFLAGS)
LDFLAGS_ALL += $(LDFLAGS) -pthread

CAPTURE_LIBS := -lelf -lzstd
ANALYZE_LIBS := -ldw -lelf -lzstd -lcjson -lprotobuf-c -lz -lm
# The tools link elfutils and the compressors statically when their
# archives are installed (the Debian -dev packages carry them): a
# sampler's CPU cost includes its start-up, and loading seven shared
# libraries was ~1.5 ms of it. The shared libpyspy.so keeps them dynamic.
STATIC_DEPS := dw elf zstd z lzma bz2 protobuf-c
STATIC_FOUND := $(foreach l,$(STATIC_DEPS),$(if $(filter-out lib$(l).a,$(shell $(CC) -print-file-name=lib$(l).a)),$(l)))
ifeq ($(words $(STATIC_FOUND)),$(words $(STATIC_DEPS)))
TOOL_CAPTURE_LIBS := -Wl,-Bstatic -lelf -lzstd -lz -Wl,-Bdynamic
TOOL_ANALYZE_LIBS := -Wl,-Bstatic -ldw -lelf -lzstd -lprotobuf-c -lz -llzma -lbz2 -Wl,-Bdynamic -lcjson -lm
else
TOOL_CAPTURE_LIBS := $(CAPTURE_LIBS)
TOOL_ANALYZE_LIBS := $(ANALYZE_LIBS)
endif

# Every .c under capture/, analyze/, formats/ (any folder depth) is part of
# the library except each tool's main.c, so new files and folders need no
# Makefile change.
CAPTURE_SRC := $(filter-out capture/tool/main.c,$(sort $(shell find capture -name '*.c')))
ANALYZE_SRC := $(filter-out analyze/cli/main.c,$(sort $(shell find analyze formats -name '*.c')))
UNIT_SRC    := $(sort $(wildcard tests/unit/test_*.c))

obj = $(patsubst %.c,$(BUILDDIR)/obj/%.o,$(1))
CAPTURE_OBJ := $(call obj,$(CAPTURE_SRC))
# The pprof encoder is generated from formats/profile.proto by protoc-c
# (Debian's protobuf-c-compiler) into each build's gen/ folder; only the
# .proto is in the tree.
PROTO_OBJ   := $(BUILDDIR)/obj/gen/profile.pb-c.o
ANALYZE_OBJ := $(call obj,$(ANALYZE_SRC)) $(PROTO_OBJ)
LIB_OBJ     := $(CAPTURE_OBJ) $(ANALYZE_OBJ)
UNIT_BIN    := $(patsubst tests/unit/%.c,$(BUILDDIR)/tests/%,$(UNIT_SRC))

BIN := $(BUILDDIR)/bin
TOOLS := $(BIN)/pyspy-capture $(BIN)/pyspy-analyze $(BIN)/pyspy
LIB := $(BUILDDIR)/lib
# lib/pyspy.pc is the one make install puts under PREFIX; the uninstalled
# one (in lib/pkgconfig, linked from lib) points at this tree, so
# PKG_CONFIG_PATH=$(LIB)/pkgconfig builds programs against it.
LIBS := $(LIB)/libpyspy.a $(LIB)/libpyspy.so.0 $(LIB)/libpyspy.so \
        $(LIB)/pyspy.pc $(LIB)/pkgconfig/pyspy-uninstalled.pc \
        $(LIB)/pyspy-uninstalled.pc

.PHONY: all check check-build test demo install uninstall clean format deps fixtures-test fuzz
all: $(TOOLS) $(LIBS)

# Objects depend on the flags they were built with, so switching SAN on or
# off in one BUILDDIR rebuilds everything instead of mixing builds.
FLAGS_FILE := $(BUILDDIR)/.flags
FLAGS_NOW  := $(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(LDFLAGS_ALL) $(TOOL_ANALYZE_LIBS)
$(shell mkdir -p $(BUILDDIR) && echo '$(FLAGS_NOW)' | cmp -s - $(FLAGS_FILE) || echo '$(FLAGS_NOW)' > $(FLAGS_FILE))

$(BUILDDIR)/obj/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c $< -o $@

%/gen/profile.pb-c.c %/gen/profile.pb-c.h: formats/profile.proto
	@mkdir -p $*/gen
	protoc-c --proto_path=formats --c_out=$*/gen $<

$(PROTO_OBJ): $(BUILDDIR)/gen/profile.pb-c.c $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c $< -o $@

$(call obj,formats/pprof.c): $(BUILDDIR)/gen/profile.pb-c.h

# Linking against the archive pulls in only what each tool uses; linking
# pyspy-capture with libelf and libzstd alone proves it needs nothing else.
$(BIN)/pyspy-capture: $(call obj,capture/tool/main.c) $(BUILDDIR)/lib/libpyspy.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ -o $@ $(TOOL_CAPTURE_LIBS)

$(BIN)/pyspy-analyze: $(call obj,analyze/cli/main.c) $(BUILDDIR)/lib/libpyspy.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ -o $@ $(TOOL_ANALYZE_LIBS)

$(BIN)/pyspy: $(BIN)/pyspy-analyze
	ln -sf pyspy-analyze $@

$(BUILDDIR)/lib/libpyspy.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The file carries its soname, as installed; libpyspy.so is the link
# the linker looks for.
$(LIB)/libpyspy.so.0: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -Wl,-soname,libpyspy.so.0 $^ -o $@ $(ANALYZE_LIBS)

$(LIB)/libpyspy.so: $(LIB)/libpyspy.so.0
	ln -sf libpyspy.so.0 $@

PC_VERSION = $(shell sed -n 's/^\#define PYSPY_VERSION "\(.*\)"/\1/p' include/pyspy.h)

PC_INSTALLED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(PC_VERSION)|' pyspy.pc.in

$(LIB)/pyspy.pc: pyspy.pc.in include/pyspy.h Makefile
	@mkdir -p $(dir $@)
	$(PC_INSTALLED) > $@

# Absolute paths: the flags must work from any directory, and the rpath
# lets the program start without LD_LIBRARY_PATH. A sanitizer build's
# library needs its runtime in the program too.
$(LIB)/pkgconfig/pyspy-uninstalled.pc: pyspy-uninstalled.pc.in include/pyspy.h Makefile $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	sed -e 's|@LIBDIR@|$(abspath $(LIB))|' -e 's|@INCLUDEDIR@|$(CURDIR)/include|' \
	    -e 's|@VERSION@|$(PC_VERSION)|' -e 's|@SAN_LDFLAGS@|$(SAN_LDFLAGS)|' $< > $@

$(LIB)/pyspy-uninstalled.pc: $(LIB)/pkgconfig/pyspy-uninstalled.pc
	ln -sf pkgconfig/pyspy-uninstalled.pc $@

$(BUILDDIR)/tests/%: tests/unit/%.c tests/unit/testlib.h $(BUILDDIR)/lib/libpyspy.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -MF $@.d $(CFLAGS_ALL) $(LDFLAGS_ALL) $< $(BUILDDIR)/lib/libpyspy.a -o $@ $(TOOL_ANALYZE_LIBS)

deps:
	@tools/ensure-deps

# The tests always run the sanitizer build.
# Debian sid's 3.14/3.15 are prepared (cached outside the repo) so they are
# tested live; when they cannot be fetched their tests skip and say why.
check: deps
	@fixtures/get-sid-pythons >/dev/null || echo "note: sid's 3.14/3.15 could not be prepared; their live tests will be skipped"
	$(MAKE) --no-print-directory BUILDDIR=build/asan SAN=1 check-build
	$(MAKE) --no-print-directory fuzz
	@tools/run-tests build/asan

check-build: $(TOOLS) $(UNIT_BIN) $(LIBS)

# libFuzzer harnesses (tests/fuzz/fuzz_*.c), one per parser of hostile
# input, in their own build: the whole library is compiled by clang with
# coverage instrumentation, so the fuzzer sees its branches.
# tests/test_fuzz.py runs each briefly; bench/README.md has the long runs.
FUZZ_DIR   ?= build/fuzz
FUZZ_CC    ?= clang
FUZZ_FLAGS := -std=c11 -Wall -Wextra -Werror -g -O1 -pthread \
              -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/bin/%,$(FUZZ_SRC))
FUZZ_OBJ   := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(CAPTURE_SRC) $(ANALYZE_SRC)) \
              $(FUZZ_DIR)/obj/gen/profile.pb-c.o
FUZZ_CPPFLAGS := -I$(FUZZ_DIR)/gen $(CPPFLAGS_ALL)

fuzz: $(FUZZ_BIN) $(FUZZ_DIR)/bin/seedgen

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/obj/gen/profile.pb-c.o: $(FUZZ_DIR)/gen/profile.pb-c.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/obj/formats/pprof.o: $(FUZZ_DIR)/gen/profile.pb-c.h

$(FUZZ_DIR)/lib/libpyspy.a: $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/bin/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_DIR)/lib/libpyspy.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS_ALL) -MF $@.d $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_DIR)/lib/libpyspy.a -o $@ $(ANALYZE_LIBS)

# Writes the seed corpus from the fixtures (tests/fuzz/make-corpus).
$(FUZZ_DIR)/bin/seedgen: tests/fuzz/seedgen.c tests/fuzz/fuzz_common.h $(FUZZ_DIR)/lib/libpyspy.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS_ALL) -MF $@.d $(FUZZ_FLAGS) $< $(FUZZ_DIR)/lib/libpyspy.a -o $@ $(ANALYZE_LIBS)

demo: deps all
	@tools/demo $(BIN)

format:
	clang-format -i $(wildcard include/*.h tests/unit/*.[ch] tests/fuzz/*.[ch]) $(shell find capture analyze formats -name '*.[ch]')

# pyspy.pc is written for the PREFIX given here, which need not be the one
# `make` ran with.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 0755 $(BIN)/pyspy-capture $(BIN)/pyspy-analyze $(DESTDIR)$(PREFIX)/bin/
	ln -sf pyspy-analyze $(DESTDIR)$(PREFIX)/bin/pyspy
	install -m 0644 $(BUILDDIR)/lib/libpyspy.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(BUILDDIR)/lib/libpyspy.so.0 $(DESTDIR)$(PREFIX)/lib/libpyspy.so.0
	ln -sf libpyspy.so.0 $(DESTDIR)$(PREFIX)/lib/libpyspy.so
	$(PC_INSTALLED) > $(DESTDIR)$(PREFIX)/lib/pkgconfig/pyspy.pc
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/pyspy.pc
	install -m 0644 include/pyspy.h $(DESTDIR)$(PREFIX)/include/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/pyspy-capture $(DESTDIR)$(PREFIX)/bin/pyspy-analyze \
	      $(DESTDIR)$(PREFIX)/bin/pyspy $(DESTDIR)$(PREFIX)/lib/libpyspy.a \
	      $(DESTDIR)$(PREFIX)/lib/libpyspy.so $(DESTDIR)$(PREFIX)/lib/libpyspy.so.0 \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/pyspy.pc $(DESTDIR)$(PREFIX)/include/pyspy.h

clean:
	rm -rf build

-include $(shell find $(BUILDDIR) -name '*.d' 2>/dev/null)
ifneq ($(filter fuzz check,$(MAKECMDGOALS)),)
-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
endif

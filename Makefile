# libonerec — GNU make build. `make help` lists the targets. Quiet unless V=1.
#   make                 library (shared + static) and the onerec CLI, under build/
#   make test            cmocka suites (plain build)       make test-asan   same, ASan+UBSan
#   make cuda            the CUDA backend plugin (nvcc)     make check-abi   abidiff vs abi/
#   make check           everything CI runs                 make install     PREFIX, DESTDIR

MAJOR := $(shell sed -n 's/^\#define ONEREC_VERSION_MAJOR \([0-9]*\)/\1/p' include/onerec/version.h)
MINOR := $(shell sed -n 's/^\#define ONEREC_VERSION_MINOR \([0-9]*\)/\1/p' include/onerec/version.h)
PATCH := $(shell sed -n 's/^\#define ONEREC_VERSION_PATCH \([0-9]*\)/\1/p' include/onerec/version.h)
VERSION := $(MAJOR).$(MINOR).$(PATCH)

PREFIX ?= /usr/local
EXEC_PREFIX ?= $(PREFIX)
LIBDIR ?= $(EXEC_PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(EXEC_PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=

BUILD ?= build
CC ?= cc
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
# sm_90 (H100/H200) native code, plus PTX that newer GPUs can JIT.
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90

ifeq ($(V),1)
Q :=
else
Q := @
endif

DEP_PKGS := openblas hdf5
DEP_CFLAGS := $(shell pkg-config --cflags $(DEP_PKGS))
DEP_LIBS := $(shell pkg-config --libs $(DEP_PKGS)) -ldl -lpthread -lm

OPT ?= -O2
WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) -fPIC -fvisibility=hidden \
  -DONEREC_BUILDING -Iinclude $(DEP_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(LDFLAGS)
ifeq ($(SAN),1)
# Out-of-memory paths are tested: ASan must return NULL for huge requests instead of aborting.
TEST_ENV := ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CFLAGS_ALL += $(SANFLAGS)
LDFLAGS_ALL += $(SANFLAGS)
endif

LIB_SRC := $(wildcard lib/*.c) $(filter-out cpu/simd_kernels.c,$(wildcard cpu/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) \
  $(BUILD)/obj/cpu/simd_avx512.o $(BUILD)/obj/cpu/simd_avx2.o $(BUILD)/obj/cpu/simd_scalar.o
SIMD_FLAGS_avx512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2 -mprefer-vector-width=512
SIMD_FLAGS_avx2 := -mavx2 -mfma
SIMD_FLAGS_scalar :=

SONAME := libonerec.so.$(MAJOR)
SHLIB := $(BUILD)/libonerec.so.$(VERSION)
STLIB := $(BUILD)/libonerec.a
CLI := $(BUILD)/bin/onerec
CUDA_PLUGIN := $(BUILD)/libonerec-cuda.so.$(MAJOR)

TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_LIBS := $(shell pkg-config --libs cmocka)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all lib cli test test-asan cuda check check-abi check-symbols check-install update-abi \
  install install-headers install-shared install-static install-pc install-cli uninstall \
  bench demo clean help
all: lib cli
lib: $(BUILD)/libonerec.so $(STLIB)
cli: $(CLI)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/obj/cpu/simd_%.o: cpu/simd_kernels.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< [$*]")
	$(Q)$(CC) $(CFLAGS_ALL) -O3 -ffp-contract=fast -fno-math-errno $(SIMD_FLAGS_$*) \
	  -DORX_SIMD_NAME=orx_simd_$* -DORX_SIMD_ISA='"$*"' -MMD -MP -c $< -o $@

$(SHLIB): $(LIB_OBJ) lib/libonerec.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libonerec.map \
	  -Wl,--no-undefined $(LDFLAGS_ALL) -o $@ $(LIB_OBJ) $(DEP_LIBS)

$(BUILD)/libonerec.so: $(SHLIB)
	$(Q)ln -sf libonerec.so.$(VERSION) $(BUILD)/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

$(STLIB): $(LIB_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $(LIB_OBJ)

# The CLI links the shared library, as any user would; rpath finds it in build/ and after install.
CLI_SRC := $(wildcard examples/cli/*.c)
$(CLI): $(CLI_SRC) $(BUILD)/libonerec.so
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) -Iinclude $(filter-out -fvisibility=hidden,$(SANFLAGS)) \
	  $(CLI_SRC) -o $@ -L$(BUILD) -lonerec -Wl,-rpath,'$$ORIGIN/..:$$ORIGIN/../lib' $(LDFLAGS_ALL) -lm

# Tests link the static library so they can reach internal functions (op kernels) too.
$(BUILD)/tests/%: tests/%.c tests/testutil.h $(STLIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) $(CFLAGS_ALL) -Ilib -Icpu $< -o $@ $(STLIB) $(LDFLAGS_ALL) $(TEST_LIBS) $(DEP_LIBS)
# test_cli compiles the CLI's option parser in.
$(BUILD)/tests/test_cli: examples/cli/cli_args.c examples/cli/cli.h

# A stand-in plugin for the loader tests (tests/test_plugin.c), in a folder of its own.
FAKE_PLUGIN_DIR := $(BUILD)/tests/fake_plugin
FAKE_PLUGIN := $(FAKE_PLUGIN_DIR)/libonerec-cuda.so.$(MAJOR)
$(FAKE_PLUGIN): tests/fake_plugin/fake_cuda.c lib/backend.h
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) -Ilib -shared $< -o $@ $(LDFLAGS_ALL)

test: $(TEST_BIN) $(CLI) $(FAKE_PLUGIN)
	@fail=0; for t in $(TEST_BIN); do \
	  echo "== $$t"; \
	  ONEREC_BACKEND_PATH=$(BUILD) ONEREC_CLI=$(CLI) FAKE_PLUGIN_DIR=$(FAKE_PLUGIN_DIR) $(TEST_ENV) $$t || fail=1; \
	done; \
	if [ $$fail -ne 0 ]; then echo "TESTS FAILED ($(BUILD))"; exit 1; fi; echo "all tests passed ($(BUILD))"

test-asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=1 OPT=-O1 test

$(BUILD)/bench/%: bench/%.c bench/bench_common.h $(STLIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) $(CFLAGS_ALL) -O3 -Ilib -Icpu $< -o $@ $(STLIB) $(LDFLAGS_ALL) $(DEP_LIBS)

bench: $(BENCH_BIN)

# The main job: the pipeline end to end on the built-in default (tools/demo.sh says which steps).
demo: $(CLI) $(BENCH_BIN)
	$(Q)sh tools/demo.sh $(BUILD)

# ---- CUDA plugin: nvcc, links cuBLAS; libonerec itself never links CUDA ----
CUDA_SRC := $(wildcard cuda/*.cu)
CUDA_OBJ := $(CUDA_SRC:%.cu=$(BUILD)/obj/%.o)
NVCCFLAGS := -std=c++17 -O2 $(CUDA_ARCH) -Iinclude -Ilib -DONEREC_BUILDING \
  -Xcompiler -fPIC,-fvisibility=hidden,-Wall
cuda: $(CUDA_PLUGIN)
$(BUILD)/obj/cuda/%.o: cuda/%.cu $(wildcard cuda/*.h) lib/backend.h lib/dropout_hash.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $<")
	$(Q)$(NVCC) $(NVCCFLAGS) -c $< -o $@
$(CUDA_PLUGIN): $(CUDA_OBJ) cuda/plugin.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(NVCC) -shared $(CUDA_ARCH) -Xlinker --version-script=cuda/plugin.map \
	  -Xlinker -soname=libonerec-cuda.so.$(MAJOR) -o $@ $(CUDA_OBJ) \
	  -L$(CUDA_HOME)/lib64 -lcublas -lcudart -Xlinker -rpath=$(CUDA_HOME)/lib64

# ---- ABI and exported symbols ----
ABI_BASELINE := abi/libonerec.abi
check-symbols: $(BUILD)/libonerec.so
	$(Q)sh tools/check-symbols.sh $(SHLIB) lib/libonerec.map
check-abi: $(BUILD)/libonerec.so
	$(Q)sh tools/check-abi.sh $(ABI_BASELINE) $(SHLIB) include/onerec
update-abi: $(BUILD)/libonerec.so
	abidw --headers-dir include/onerec --no-corpus-path --out-file $(ABI_BASELINE) $(SHLIB)

# ---- install ----
install: install-headers install-shared install-static install-pc install-cli
install-headers:
	install -d $(DESTDIR)$(INCLUDEDIR)/onerec
	install -m 644 include/onerec/*.h $(DESTDIR)$(INCLUDEDIR)/onerec/
install-shared: $(BUILD)/libonerec.so
	install -d $(DESTDIR)$(LIBDIR)
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libonerec.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libonerec.so
	if [ -f $(CUDA_PLUGIN) ]; then install -m 755 $(CUDA_PLUGIN) $(DESTDIR)$(LIBDIR)/; fi
install-static: $(STLIB)
	install -d $(DESTDIR)$(LIBDIR)
	install -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/
install-pc: pkgconfig/onerec.pc.in
	install -d $(DESTDIR)$(PKGCONFIGDIR)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	  -e 's|@VERSION@|$(VERSION)|' pkgconfig/onerec.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/onerec.pc
install-cli: $(CLI)
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/onerec
uninstall:
	rm -rf $(DESTDIR)$(INCLUDEDIR)/onerec
	rm -f $(DESTDIR)$(LIBDIR)/libonerec.so* $(DESTDIR)$(LIBDIR)/libonerec.a \
	  $(DESTDIR)$(LIBDIR)/libonerec-cuda.so.* $(DESTDIR)$(PKGCONFIGDIR)/onerec.pc \
	  $(DESTDIR)$(BINDIR)/onerec

# Installs into a scratch DESTDIR and builds examples/embed against it with pkg-config.
check-install: all
	$(Q)sh tools/check-install.sh $(BUILD)

# Everything CI runs (README's test command).
check: all
	$(Q)$(MAKE) --no-print-directory test
	$(Q)$(MAKE) --no-print-directory check-symbols check-abi check-install
	$(Q)$(MAKE) --no-print-directory cuda
	$(Q)$(MAKE) --no-print-directory test-asan

clean:
	rm -rf build

help:
	@sed -n '1,6p' Makefile

# Dependency files are only read, never made: without this rule make would try to remake them
# through its built-in `%: %.o`, which the simd_%.o pattern matches.
$(BUILD)/obj/%.d: ;
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

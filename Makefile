# Quick start: `make demo` and `make test`. Both install missing Debian packages first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo test clean FORCE

all: build

deps:
	@scripts/install-deps.sh

# The CMAKE_FLAGS of the last configure. Different flags (or none where there were some) start
# a fresh configure: the old cache would otherwise keep options the new flags no longer set.
$(BUILD_DIR)/cmake-flags.txt: FORCE
	@mkdir -p $(BUILD_DIR)
	@if [ ! -f $@ ] || [ "$$(cat $@)" != '$(CMAKE_FLAGS)' ]; then \
		printf '%s' '$(CMAKE_FLAGS)' > $@; rm -f $(BUILD_DIR)/CMakeCache.txt; fi

$(BUILD_DIR)/build.ninja: $(BUILD_DIR)/cmake-flags.txt | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

configure: $(BUILD_DIR)/build.ninja

build: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	scripts/demo.sh $(BUILD_DIR)/vortex

test: build
	@scripts/install-deps.sh test
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD_DIR)

# ---- Sanitizers and fuzzing (docs/architecture.md, "Sanitizers and fuzzing") -----------------
# make sanitize: ASan + UBSan build of the CPU code in its own directory, whole test suite.
# make ci-sanitize: the same build, only the test binaries CI runs (label `ci_sanitize`, see
# VORTEX_CI_SANITIZE_TEST_BINARIES in CMakeLists.txt).
# make fuzz: libFuzzer targets (clang), each run FUZZ_SECONDS from its seed corpus.
SANITIZE_DIR ?= build-sanitize
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= flow_check safetensors model_config tokenizer chat_template
SANITIZE_ENV := ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:strict_init_order=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: sanitize ci-sanitize fuzz-deps fuzz-build fuzz

# -O1 and line tables only: about a third less compile time than -O2 -g, still fast enough to
# run, and every report still has file:line.
$(SANITIZE_DIR)/build.ninja: | deps
	cmake -S . -B $(SANITIZE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DVORTEX_SANITIZE=ON -DVORTEX_CUDA=OFF \
		$(CMAKE_FLAGS)

# Tests labelled `emulated` run binaries under qemu-user, where ASan cannot map its shadow
# memory; they check instruction sets, not memory safety, so the sanitizer runs leave them out.
sanitize: deps $(SANITIZE_DIR)/build.ninja
	cmake --build $(SANITIZE_DIR) -j $(JOBS)
	cd $(SANITIZE_DIR) && $(SANITIZE_ENV) ctest --output-on-failure -j $(JOBS) -LE emulated

ci-sanitize: deps $(SANITIZE_DIR)/build.ninja
	cmake --build $(SANITIZE_DIR) -j $(JOBS) --target ci_sanitize_tests
	cd $(SANITIZE_DIR) && $(SANITIZE_ENV) ctest --output-on-failure -j $(JOBS) -L ci_sanitize

fuzz-deps:
	@scripts/install-deps.sh fuzz

$(FUZZ_DIR)/build.ninja: | fuzz-deps
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_CXX_COMPILER=clang++-14 -DVORTEX_FUZZ=ON -DVORTEX_TESTS=OFF -DVORTEX_CUDA=OFF \
		$(CMAKE_FLAGS)

fuzz-build: fuzz-deps $(FUZZ_DIR)/build.ninja
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzzers

fuzz: fuzz-build
	scripts/fuzz.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

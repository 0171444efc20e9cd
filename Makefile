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

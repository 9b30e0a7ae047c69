# The two commands a newcomer needs: `make run` and `make check`. Both install what is missing.
BUILD     ?= build
SAN_BUILD ?= build-san
PYTEST    := /usr/bin/python3 -m pytest
CONFIG    ?= examples/aerie.ini

.PHONY: all setup build build-san run check fuzz bench clean

all: build

setup:
	@sh scripts/setup.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(SAN_BUILD)/build.ninja:
	meson setup $(SAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build: setup $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-san: setup $(SAN_BUILD)/build.ninja
	ninja -C $(SAN_BUILD)

run: build
	$(BUILD)/aerie host $(CONFIG)

# Unit tests run under ASan+UBSan; integration tests drive the sanitized binary too, and a
# valgrind test drives the plain one.
check: build build-san
	meson test -C $(SAN_BUILD) --print-errorlogs
	AERIE_BIN=$(CURDIR)/$(SAN_BUILD)/aerie AERIE_PLAIN_BIN=$(CURDIR)/$(BUILD)/aerie \
	AERIE_EXAMPLES=$(CURDIR)/$(BUILD)/examples \
		$(PYTEST) -q -p no:cacheprovider tests/integration
	fuzz/run $(FUZZ_SECONDS)

# libFuzzer targets (protocol, config, /proc parsers); `make fuzz FUZZ_SECONDS=3600` for long runs.
FUZZ_SECONDS ?= 10
fuzz: setup
	fuzz/run $(FUZZ_SECONDS)

# Each benchmark measures aerie against a peer in the same run and writes bench/*.md.
bench: build
	@sh scripts/setup.sh python3-psutil
	bench/metrics
	bench/respawn
	bench/restart

clean:
	rm -rf $(BUILD) $(SAN_BUILD)

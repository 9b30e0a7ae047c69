# The two commands a newcomer needs: `make run` and `make check`. Both install what is missing.
BUILD     ?= build
SAN_BUILD ?= build-san
PYTEST    := /usr/bin/python3 -m pytest
CONFIG    ?= examples/aerie.ini

.PHONY: all setup build build-san run check fuzz bench clean man install deb

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
	scripts/lint $(BUILD)
	AERIE_BIN=$(CURDIR)/$(SAN_BUILD)/aerie AERIE_PLAIN_BIN=$(CURDIR)/$(BUILD)/aerie \
	AERIE_EXAMPLES=$(CURDIR)/$(BUILD)/examples \
		$(PYTEST) -q -p no:cacheprovider tests/integration
	fuzz/run $(FUZZ_SECONDS)

# libFuzzer targets (protocol, config, /proc parsers); `make fuzz FUZZ_SECONDS=3600` for long runs.
FUZZ_SECONDS ?= 30
fuzz: setup
	fuzz/run $(FUZZ_SECONDS)

# Each benchmark measures aerie against a peer in the same run and writes bench/*.md.
bench: build
	@sh scripts/setup.sh python3-psutil
	bench/all

# Man pages: written in scdoc (docs/*.scd), generated into $(BUILD)/man/ with the version of
# meson.build. scdoc asks for no hyphenation before .TH, which turns it back on: the .nh after
# it keeps identifiers such as ready_timeout whole. A package build runs
# `make install PREFIX=/usr DESTDIR=/tmp/root`.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
VERSION := $(shell sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build)
MANPAGES := $(BUILD)/man/aerie.1 $(BUILD)/man/aerie.ini.5

man: $(MANPAGES)

$(BUILD)/man/%: docs/%.scd meson.build Makefile | setup
	@mkdir -p $(@D)
	sed 's/@VERSION@/$(VERSION)/g' $< | scdoc > $@.new
	sed -i '/^\.TH /a .nh' $@.new
	mv $@.new $@

install: build man
	install -D -m 755 $(BUILD)/aerie $(DESTDIR)$(BINDIR)/aerie
	install -D -m 644 $(BUILD)/man/aerie.1 $(DESTDIR)$(MANDIR)/man1/aerie.1
	install -D -m 644 $(BUILD)/man/aerie.ini.5 $(DESTDIR)$(MANDIR)/man5/aerie.ini.5

# The Debian package (debian/), built from a copy of the tree as a clean checkout would be, then
# checked by lintian: build/deb/aerie_VERSION_ARCH.deb.
deb: setup
	scripts/deb $(BUILD)/deb

clean:
	rm -rf $(BUILD) $(SAN_BUILD)

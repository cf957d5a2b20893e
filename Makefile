# vaio-nbd front door.  meson does the building; this file only drives it.
#
#   make            build everything into ./build
#   make check      run every test (unit, integration, guest)
#   make check-asan run the unit tests under ASan+UBSan (./build-asan)
#   make demo       serve two VM disks through a full chain and show it working
#   make bench      fio benchmarks, ratios against bare nbdkit in the same run
#   make install    filters into nbdkit's filterdir, vaioctl and vaio-crypt into
#                   $(PREFIX)/bin, vaioctl.1 into $(PREFIX)/share/man/man1,
#                   every filter's manifest (path and sha256 of the installed
#                   .so) into $(PREFIX)/share/vaio-nbd/manifests (DESTDIR and
#                   PREFIX honoured; FILTERDIR overrides nbdkit's filterdir)
#   make format     clang-format every C file in place

BUILD     ?= build
PREFIX    ?= /usr/local
DESTDIR   ?=
FILTERDIR ?= $(shell nbdkit --dump-config 2>/dev/null | sed -n 's/^filterdir=//p')
MESON_TEST_ARGS ?=

.PHONY: all deps check check-asan demo bench install format clean

all: deps
	@if [ ! -f $(BUILD)/build.ninja ]; then \
	  meson setup $(BUILD) --prefix=$(PREFIX) -Dfilterdir=$(FILTERDIR); \
	fi
	ninja -C $(BUILD)

deps:
	@scripts/install-deps

check: all
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 $(MESON_TEST_ARGS); \
	  rc=$$?; scripts/test-summary $(BUILD); exit $$rc

check-asan: deps
	@if [ ! -f $(BUILD)-asan/build.ninja ]; then \
	  meson setup $(BUILD)-asan -Db_sanitize=address,undefined -Db_lundef=false \
	    -Dfilterdir=$(FILTERDIR); \
	fi
	ninja -C $(BUILD)-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  meson test -C $(BUILD)-asan --suite unit --print-errorlogs; \
	  rc=$$?; scripts/test-summary $(BUILD)-asan; exit $$rc

demo: all
	BUILD=$(BUILD) scripts/demo

bench: all
	scripts/bench

install: all
	meson configure $(BUILD) --prefix=$(PREFIX) -Dfilterdir=$(FILTERDIR) >/dev/null
	DESTDIR=$(DESTDIR) meson install -C $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan

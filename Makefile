# The two commands of the README: `make run` and `make test`. Both install
# missing Debian packages first, then configure and build with CMake.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
RUN_ARGS   ?=

.PHONY: all deps build run test unit asan format format-check bench install clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS)

# The seed image (a busybox root filesystem) is built once and imported by
# init unless an image named busybox exists, so the README tour runs offline.
$(BUILD)/busybox.tar: scripts/busybox-rootfs.sh
	scripts/busybox-rootfs.sh $@

run: build $(BUILD)/busybox.tar
	$(BUILD)/stratosd init --import-image busybox=$(BUILD)/busybox.tar $(RUN_ARGS)
	exec $(BUILD)/stratosd $(RUN_ARGS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j 2

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit -j 2

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DST_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -L unit -j 2

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

bench: build
	@scripts/install-deps.sh --bench
	bench/run-all.sh $(BUILD)

install: build
	install -m 0755 $(BUILD)/stratosd $(BUILD)/stratos /usr/local/bin/

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

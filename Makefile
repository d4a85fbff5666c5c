# Thin wrapper over Meson; see README.md.  Every target installs what is missing first.
BUILD ?= build
MESON_OPTS ?=

.PHONY: all deps build test run model bench fuzz sanitize clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

test: build
	meson test -C $(BUILD) --print-errorlogs

run: build
	@if [ -x scripts/run-main.sh ]; then scripts/run-main.sh $(BUILD); \
	else $(BUILD)/examples/memslots-example; fi

model: deps
	scripts/run-model.sh

bench: deps
	@[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release
	ninja -C build-release
	scripts/bench.sh build-release

fuzz: deps
	scripts/fuzz-smoke.sh

# Unit tests and short count-gate stress runs under ASan+UBSan and under TSan, built with clang.
sanitize: deps
	scripts/sanitize.sh

clean:
	rm -rf $(BUILD) build-release build-asan build-tsan build-fuzz

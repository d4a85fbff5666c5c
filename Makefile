# Thin wrapper over Meson; see README.md.  Every target first makes sure what
# it needs is here (scripts/install-deps.sh TARGET installs only what is
# missing, and only that target's needs: a plain build gets no clang, spin
# or gnuplot).
BUILD ?= build
MESON_OPTS ?=
# What deps checks for; each target sets its own, which make passes on to
# the prerequisites it builds (deps, build) for that target.
DEPS = build

.PHONY: all deps build test run model bench fuzz sanitize clean

all: build

deps:
	@scripts/install-deps.sh $(DEPS)

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

test: DEPS = test
test: build
	meson test -C $(BUILD) --print-errorlogs

run: DEPS = run
run: build
	@if [ -x scripts/run-main.sh ]; then scripts/run-main.sh $(BUILD); \
	else $(BUILD)/examples/memslots-example; fi

model: DEPS = model
model: deps
	scripts/run-model.sh

bench: DEPS = bench
bench: deps
	@[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release
	ninja -C build-release
	scripts/bench.sh build-release

fuzz: DEPS = fuzz
fuzz: deps
	scripts/fuzz-smoke.sh

# Unit tests and short count-gate stress runs under ASan+UBSan and under TSan, built with clang.
sanitize: DEPS = sanitize
sanitize: deps
	scripts/sanitize.sh

clean:
	rm -rf $(BUILD) build-release build-asan build-tsan build-fuzz

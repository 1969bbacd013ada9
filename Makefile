# Two entry points for a fresh Debian 12 machine (each installs what it needs):
#   make demo   - http-example + otelprof inspect + otelprof record (CPU per trace)
#   make check  - the whole test suite (what CI runs)
.PHONY: demo check build clean
demo:
	./scripts/demo.sh
check:
	./scripts/check.sh
build:
	./scripts/deps.sh
	cmake -S . -B build -G Ninja
	ninja -C build
clean:
	rm -rf build build-ci

# Shortcuts for developers; the README's commands are the scripts themselves
# (a fresh machine may not have make).
.PHONY: run test build clean
run:
	scripts/run.sh
test:
	scripts/test-all.sh
build:
	[ -f build/build.ninja ] || meson setup build -Dwerror=true
	ninja -C build
clean:
	rm -rf build build-asan

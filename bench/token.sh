#!/usr/bin/env bash
# Tokens issued per second (argon2id at the default cost, stated in the
# output) and validations per second, cached and uncached: bench/token.c.
#   bench/token.sh [builddir] [seconds]   (default: build, 3)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
exec "$build/bench/bench_token" "${2:-3}"

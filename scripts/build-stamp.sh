#!/usr/bin/env bash
# Writes Sysroot/CWeirBuild/build-stamp.h (ignored by git) with the commit being built, for
# `weir version`. The commit: $WEIR_COMMIT if set (a tarball without .git), else git's HEAD
# (12 hex digits, "-dirty" with uncommitted changes), else "unknown". The file is rewritten only
# when the commit changed, and then shim.h and Sources/weir/Version.swift are touched: SwiftPM
# tracks neither a header that appears nor one included from a module's header, so the touch is
# what recompiles Version.swift (and only it). An unchanged commit rebuilds nothing.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/Sysroot/CWeirBuild"
commit=${WEIR_COMMIT:-}
if [ -z "$commit" ] && git -C "$dir" rev-parse --git-dir >/dev/null 2>&1; then
  commit=$(git -C "$dir" rev-parse --short=12 HEAD)
  git -C "$dir" diff --quiet HEAD -- 2>/dev/null || commit="$commit-dirty"
fi
commit=${commit:-unknown}
line="#define WEIR_BUILD_COMMIT \"$commit\""
if [ "$(cat "$dir/build-stamp.h" 2>/dev/null)" != "$line" ]; then
  printf '%s\n' "$line" > "$dir/build-stamp.h"
  touch "$dir/shim.h" "$dir/../../Sources/weir/Version.swift"
fi

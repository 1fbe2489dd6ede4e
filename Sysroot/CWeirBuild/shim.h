// The version and build commit `weir version` prints.
//
// WEIR_VERSION is the release, kept here. The commit comes from build-stamp.h, which
// scripts/build-stamp.sh writes before every `make build` from `git rev-parse` (or from
// WEIR_COMMIT=... for a tarball without .git); git ignores it. A plain `swift build` in a fresh
// clone has no stamp and reports "unknown": the build never depends on git being there.
#ifndef WEIR_BUILD_SHIM_H
#define WEIR_BUILD_SHIM_H

#define WEIR_VERSION "0.12.0"

#if __has_include("build-stamp.h")
#include "build-stamp.h"
#endif
#ifndef WEIR_BUILD_COMMIT
#define WEIR_BUILD_COMMIT "unknown"
#endif

static inline const char *weir_version(void) { return WEIR_VERSION; }
static inline const char *weir_build_commit(void) { return WEIR_BUILD_COMMIT; }

#endif

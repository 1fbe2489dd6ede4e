// libnghttp2 (Debian 12: 1.52 with the 2023/2024 security backports: stream_reset_rate_limit and
// max_continuations options). Only WeirIO imports this module; it allocates through Weir's
// per-thread free lists (ThreadMemory.http2Allocator, Sources/CWeirMemory).
#include <nghttp2/nghttp2.h>

import CNghttp2
import CWeirMemory

/// Weir's allocator for libevent, nghttp2 and OpenSSL (Sources/CWeirMemory): per-thread free lists
/// in front of malloc, so that the evbuffer segments a request's buffers take and give back, an
/// HTTP/2 stream's objects and frames, and a TLS connection's record buffers are blocks earlier
/// requests gave back. A constructor installs it as libevent's and OpenSSL's before main; HTTP/2
/// sessions are made with `http2Allocator`.
///
/// The rest of what this type offers is for tests and diagnostics.
public enum ThreadMemory {
    /// nghttp2's allocator: the calling thread's free lists (nghttp2 copies the structure).
    static var http2Allocator: nghttp2_mem {
        nghttp2_mem(mem_user_data: nil,
                    malloc: { size, _ in weir_mem_malloc(size) },
                    free: { block, _ in weir_mem_free(block) },
                    calloc: { count, size, _ in weir_mem_calloc(count, size) },
                    realloc: { block, size, _ in weir_mem_realloc(block, size) })
    }

    /// Whether the free lists are libevent's allocator (installed before main).
    public static var isInstalled: Bool { weir_mem_installed() != 0 }

    /// Whether the free lists are OpenSSL's allocator too (OpenSSL refuses them once it allocated).
    public static var isOpenSSLsAllocator: Bool { weir_mem_openssl_installed() != 0 }

    /// How many free blocks the calling thread's lists keep now.
    public static var threadFreeBlocks: Int { Int(weir_mem_thread_free_blocks()) }

    /// Gives the calling thread's free blocks back to malloc.
    public static func releaseThreadBlocks() { weir_mem_thread_release() }

    /// How many free blocks exiting threads have given back to malloc so far (all threads).
    public static var releasedAtThreadExit: Int { Int(weir_mem_released_at_thread_exit()) }

    /// Allocates `size` (> 0) bytes as libevent, nghttp2 and OpenSSL do. Returns nil when out of memory.
    public static func allocate(_ size: Int) -> UnsafeMutableRawPointer? { weir_mem_malloc(size) }

    /// Allocates `count` zeroed elements of `size` bytes. Returns nil on overflow or out of memory.
    public static func allocateZeroed(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? { weir_mem_calloc(count, size) }

    /// Reallocates a block from `allocate` as libevent, nghttp2 and OpenSSL do.
    public static func reallocate(_ block: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
        weir_mem_realloc(block, size)
    }

    /// Frees a block from `allocate` (or nil) as libevent, nghttp2 and OpenSSL do.
    public static func free(_ block: UnsafeMutableRawPointer?) { weir_mem_free(block) }

    /// The most free blocks a thread keeps of the class that serves `size` bytes (0: none are kept).
    public static func keptBlocks(ofSize size: Int) -> Int { Int(weir_mem_kept_blocks(size)) }
}

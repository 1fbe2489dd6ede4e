import CWeirMemory

/// libevent's allocator (Sources/CWeirMemory): per-thread free lists in front of malloc, so that the
/// evbuffer segments a request's buffers take and give back are the blocks earlier requests gave
/// back. A constructor installs it before main; nothing needs to be called for that.
///
/// What this type offers is for tests and diagnostics.
public enum LibeventMemory {
    /// Whether the free lists are libevent's allocator.
    public static var isInstalled: Bool { weir_libevent_memory_installed() != 0 }

    /// How many free blocks the calling thread's lists keep now.
    public static var threadFreeBlocks: Int { Int(weir_ev_thread_free_blocks()) }

    /// Gives the calling thread's free blocks back to malloc.
    public static func releaseThreadBlocks() { weir_ev_thread_release() }

    /// How many free blocks exiting threads have given back to malloc so far (all threads).
    public static var releasedAtThreadExit: Int { Int(weir_ev_released_at_thread_exit()) }

    /// Allocates `size` (> 0) bytes as libevent does. Returns nil when out of memory.
    public static func allocate(_ size: Int) -> UnsafeMutableRawPointer? { weir_ev_malloc(size) }

    /// Reallocates a block from `allocate` as libevent does.
    public static func reallocate(_ block: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
        weir_ev_realloc(block, size)
    }

    /// Frees a block from `allocate` (or nil) as libevent does.
    public static func free(_ block: UnsafeMutableRawPointer?) { weir_ev_free(block) }

    /// The most free blocks a thread keeps of the class that serves `size` bytes (0: none are kept).
    public static func keptBlocks(ofSize size: Int) -> Int { Int(weir_ev_kept_blocks(size)) }
}

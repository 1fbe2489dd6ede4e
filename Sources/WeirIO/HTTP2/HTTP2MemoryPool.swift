import CNghttp2

/// Free lists for nghttp2's allocations on one loop (see `weir_h2_pool` in Sysroot/CNghttp2/shim.h):
/// a stream's objects, frames and header copies are taken from blocks earlier streams gave back
/// instead of from malloc. Every session that uses the pool holds it, so it outlives them.
/// Use on the loop's thread only (`EventLoop.http2Memory`).
public final class HTTP2MemoryPool {
    let pool: UnsafeMutablePointer<weir_h2_pool>

    /// Precondition: memory for the pool's small header (a failure to allocate it is fatal).
    public init() {
        guard let pool = weir_h2_pool_new() else { fatalError("out of memory for the HTTP/2 allocation pool") }
        self.pool = pool
    }

    deinit { weir_h2_pool_free(pool) }

    /// The allocator to hand to nghttp2 (it copies the structure).
    var allocator: nghttp2_mem { weir_h2_pool_mem(pool) }

    /// How many free blocks the pool keeps now (for tests).
    var freeBlocks: Int {
        withUnsafeBytes(of: pool.pointee.free_counts) { $0.bindMemory(to: Int32.self).reduce(0) { $0 + Int($1) } }
    }
}

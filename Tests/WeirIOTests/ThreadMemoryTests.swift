import COpenSSL
import Glibc
import Testing
@testable import WeirIO

/// libevent's and nghttp2's allocator (Sources/CWeirMemory): per-thread free lists. Each test starts by giving the
/// thread's free blocks back, so that what it counts is its own (a test runs on one thread throughout).
@Suite struct ThreadMemoryTests {
    @Test func isLibeventsAllocatorBeforeAnythingRuns() {
        #expect(ThreadMemory.isInstalled)
    }

    @Test func isOpenSSLsAllocatorAndServesItsBlocks() {
        #expect(ThreadMemory.isOpenSSLsAllocator)
        ThreadMemory.releaseThreadBlocks()
        let block = CRYPTO_malloc(100, nil, 0)
        CRYPTO_free(block, nil, 0)
        #expect(ThreadMemory.threadFreeBlocks == 1)   // OpenSSL's free put it on the lists
        #expect(CRYPTO_malloc(120, nil, 0) == block)  // ... and its next malloc of the class takes it
        CRYPTO_free(block, nil, 0)
        // A TLS session's objects come and go through the lists too.
        ThreadMemory.releaseThreadBlocks()
        let ctx = SSL_CTX_new(TLS_server_method())
        #expect(ctx != nil)
        SSL_free(SSL_new(ctx))
        SSL_CTX_free(ctx)
        #expect(ThreadMemory.threadFreeBlocks > 10)
        ThreadMemory.releaseThreadBlocks()
    }

    @Test func aFreedBlockServesTheNextAllocationOfItsClass() {
        ThreadMemory.releaseThreadBlocks()
        let first = ThreadMemory.allocate(1100)!
        ThreadMemory.free(first)
        #expect(ThreadMemory.threadFreeBlocks == 1)
        let second = ThreadMemory.allocate(2048)!   // the same class (1025-2048 bytes)
        #expect(second == first && ThreadMemory.threadFreeBlocks == 0)
        let other = ThreadMemory.allocate(4096)!    // another class: a new block
        #expect(other != first)
        ThreadMemory.free(second)
        ThreadMemory.free(other)
        ThreadMemory.free(nil)                       // as free(NULL): nothing
        #expect(ThreadMemory.threadFreeBlocks == 2)
        ThreadMemory.releaseThreadBlocks()
        #expect(ThreadMemory.threadFreeBlocks == 0)
    }

    @Test func reallocKeepsTheBytesAcrossClassesAndPastTheLargest() {
        ThreadMemory.releaseThreadBlocks()
        var block = ThreadMemory.allocate(64)!
        for i in 0..<64 { block.storeBytes(of: UInt8(i), toByteOffset: i, as: UInt8.self) }
        for size in [50, 1000, 300_000, 600_000] {   // the same block, a larger class, then blocks of their own size
            block = ThreadMemory.reallocate(block, size)!
            #expect((0..<64).allSatisfy { block.load(fromByteOffset: $0, as: UInt8.self) == UInt8($0) }, "after realloc to \(size)")
        }
        ThreadMemory.free(block)   // a block of its own size goes back to free(), not kept
        #expect(ThreadMemory.threadFreeBlocks == 2)   // the 64- and 1024-byte blocks left behind
        #expect(ThreadMemory.reallocate(ThreadMemory.allocate(100), 0) == nil)   // realloc to 0 frees
        ThreadMemory.releaseThreadBlocks()
    }

    @Test func callocZeroesAReusedBlockAndRefusesAnOverflow() {
        ThreadMemory.releaseThreadBlocks()
        let dirty = ThreadMemory.allocate(64)!
        memset(dirty, 0xAB, 64)
        ThreadMemory.free(dirty)
        let zeroed = ThreadMemory.allocateZeroed(8, 8)!   // the same class: reuses `dirty`
        #expect(zeroed == dirty && (0..<64).allSatisfy { zeroed.load(fromByteOffset: $0, as: UInt8.self) == 0 })
        #expect(ThreadMemory.allocateZeroed(Int.max, 4) == nil)
        ThreadMemory.free(zeroed)
        ThreadMemory.releaseThreadBlocks()
    }

    @Test func nghttp2sAllocatorIsTheThreadsFreeLists() {
        ThreadMemory.releaseThreadBlocks()
        let mem = ThreadMemory.http2Allocator
        let block = mem.malloc(300, mem.mem_user_data)!
        mem.free(block, mem.mem_user_data)
        #expect(ThreadMemory.threadFreeBlocks == 1)
        #expect(ThreadMemory.allocate(400) == block)   // the same class (257-512 bytes)
        ThreadMemory.free(block)
        ThreadMemory.releaseThreadBlocks()
    }

    @Test func eachClassKeepsABoundedNumberOfFreeBlocks() {
        ThreadMemory.releaseThreadBlocks()
        let kept1K = ThreadMemory.keptBlocks(ofSize: 1024), kept64K = ThreadMemory.keptBlocks(ofSize: 65536)
        #expect(ThreadMemory.keptBlocks(ofSize: 100) == 512 && ThreadMemory.keptBlocks(ofSize: 512) == 512)
        #expect(kept1K == 256 && kept64K == 4 && ThreadMemory.keptBlocks(ofSize: 256 * 1024) == 2)
        #expect(ThreadMemory.keptBlocks(ofSize: 256 * 1024 + 1) == 0)   // past the largest class
        let small = (0..<(kept1K + 20)).map { _ in ThreadMemory.allocate(1000)! }
        let large = (0..<(kept64K + 3)).map { _ in ThreadMemory.allocate(40_000)! }
        let huge = ThreadMemory.allocate(300_000)!
        for p in small + large + [huge] { ThreadMemory.free(p) }
        #expect(ThreadMemory.threadFreeBlocks == kept1K + kept64K)
        ThreadMemory.releaseThreadBlocks()
    }

    @Test func anEvbufferSegmentIsReusedOnceDrained() {
        ThreadMemory.releaseThreadBlocks()
        let owned = OwnedBuffer()
        owned.buffer.append(StaticString("hello\n"))
        owned.buffer.drainAll()
        let kept = ThreadMemory.threadFreeBlocks
        #expect(kept >= 1)   // the segment came back to the lists
        for _ in 0..<100 {
            owned.buffer.append(StaticString("hello again\n"))
            #expect(ThreadMemory.threadFreeBlocks == kept - 1)   // ... and serves the next bytes
            owned.buffer.drainAll()
        }
        #expect(ThreadMemory.threadFreeBlocks == kept)
        ThreadMemory.releaseThreadBlocks()
    }

    @Test func aThreadGivesItsFreeBlocksBackWhenItExits() {
        let before = ThreadMemory.releasedAtThreadExit
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { _ in
            ThreadMemory.releaseThreadBlocks()
            let blocks = (0..<5).map { _ in ThreadMemory.allocate(3000)! }
            for b in blocks { ThreadMemory.free(b) }
            return nil
        }, nil)
        #expect(rc == 0)
        pthread_join(thread, nil)
        #expect(ThreadMemory.releasedAtThreadExit - before >= 5)   // other threads may exit meanwhile
    }
}

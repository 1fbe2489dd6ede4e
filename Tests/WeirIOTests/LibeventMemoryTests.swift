import Glibc
import Testing
@testable import WeirIO

/// libevent's allocator (Sources/CWeirMemory): per-thread free lists. Each test starts by giving the
/// thread's free blocks back, so that what it counts is its own (a test runs on one thread throughout).
@Suite struct LibeventMemoryTests {
    @Test func isLibeventsAllocatorBeforeAnythingRuns() {
        #expect(LibeventMemory.isInstalled)
    }

    @Test func aFreedBlockServesTheNextAllocationOfItsClass() {
        LibeventMemory.releaseThreadBlocks()
        let first = LibeventMemory.allocate(1100)!
        LibeventMemory.free(first)
        #expect(LibeventMemory.threadFreeBlocks == 1)
        let second = LibeventMemory.allocate(2048)!   // the same class (1025-2048 bytes)
        #expect(second == first && LibeventMemory.threadFreeBlocks == 0)
        let other = LibeventMemory.allocate(4096)!    // another class: a new block
        #expect(other != first)
        LibeventMemory.free(second)
        LibeventMemory.free(other)
        LibeventMemory.free(nil)                       // as free(NULL): nothing
        #expect(LibeventMemory.threadFreeBlocks == 2)
        LibeventMemory.releaseThreadBlocks()
        #expect(LibeventMemory.threadFreeBlocks == 0)
    }

    @Test func reallocKeepsTheBytesAcrossClassesAndPastTheLargest() {
        LibeventMemory.releaseThreadBlocks()
        var block = LibeventMemory.allocate(64)!
        for i in 0..<64 { block.storeBytes(of: UInt8(i), toByteOffset: i, as: UInt8.self) }
        for size in [50, 1000, 300_000, 600_000] {   // the same block, a larger class, then blocks of their own size
            block = LibeventMemory.reallocate(block, size)!
            #expect((0..<64).allSatisfy { block.load(fromByteOffset: $0, as: UInt8.self) == UInt8($0) }, "after realloc to \(size)")
        }
        LibeventMemory.free(block)   // a block of its own size goes back to free(), not kept
        #expect(LibeventMemory.threadFreeBlocks == 2)   // the 64- and 1024-byte blocks left behind
        #expect(LibeventMemory.reallocate(LibeventMemory.allocate(100), 0) == nil)   // realloc to 0 frees
        LibeventMemory.releaseThreadBlocks()
    }

    @Test func eachClassKeepsABoundedNumberOfFreeBlocks() {
        LibeventMemory.releaseThreadBlocks()
        let kept1K = LibeventMemory.keptBlocks(ofSize: 1024), kept64K = LibeventMemory.keptBlocks(ofSize: 65536)
        #expect(kept1K == 256 && kept64K == 4 && LibeventMemory.keptBlocks(ofSize: 256 * 1024) == 2)
        #expect(LibeventMemory.keptBlocks(ofSize: 256 * 1024 + 1) == 0)   // past the largest class
        let small = (0..<(kept1K + 20)).map { _ in LibeventMemory.allocate(1000)! }
        let large = (0..<(kept64K + 3)).map { _ in LibeventMemory.allocate(40_000)! }
        let huge = LibeventMemory.allocate(300_000)!
        for p in small + large + [huge] { LibeventMemory.free(p) }
        #expect(LibeventMemory.threadFreeBlocks == kept1K + kept64K)
        LibeventMemory.releaseThreadBlocks()
    }

    @Test func anEvbufferSegmentIsReusedOnceDrained() {
        LibeventMemory.releaseThreadBlocks()
        let owned = OwnedBuffer()
        owned.buffer.append(StaticString("hello\n"))
        owned.buffer.drainAll()
        let kept = LibeventMemory.threadFreeBlocks
        #expect(kept >= 1)   // the segment came back to the lists
        for _ in 0..<100 {
            owned.buffer.append(StaticString("hello again\n"))
            #expect(LibeventMemory.threadFreeBlocks == kept - 1)   // ... and serves the next bytes
            owned.buffer.drainAll()
        }
        #expect(LibeventMemory.threadFreeBlocks == kept)
        LibeventMemory.releaseThreadBlocks()
    }

    @Test func aThreadGivesItsFreeBlocksBackWhenItExits() {
        let before = LibeventMemory.releasedAtThreadExit
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { _ in
            LibeventMemory.releaseThreadBlocks()
            let blocks = (0..<5).map { _ in LibeventMemory.allocate(3000)! }
            for b in blocks { LibeventMemory.free(b) }
            return nil
        }, nil)
        #expect(rc == 0)
        pthread_join(thread, nil)
        #expect(LibeventMemory.releasedAtThreadExit - before >= 5)   // other threads may exit meanwhile
    }
}

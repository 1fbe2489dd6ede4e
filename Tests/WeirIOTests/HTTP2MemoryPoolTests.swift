import Glibc
import Testing
import CNghttp2
@testable import WeirIO

/// The loop's free lists for nghttp2's allocations (`weir_h2_pool`): a freed block serves the next
/// allocation of its size class, contents survive a growing realloc, and what a class keeps is bounded.
@Suite struct HTTP2MemoryPoolTests {
    @Test func aFreedBlockServesTheNextAllocationOfItsClass() {
        let memory = HTTP2MemoryPool()
        let mem = memory.allocator
        let first = mem.malloc(200, mem.mem_user_data)!
        mem.free(first, mem.mem_user_data)
        #expect(memory.freeBlocks == 1)
        let second = mem.malloc(150, mem.mem_user_data)!   // the same class (129-256 bytes)
        #expect(second == first && memory.freeBlocks == 0)
        let other = mem.malloc(40, mem.mem_user_data)!     // another class: a new block
        #expect(other != first)
        mem.free(second, mem.mem_user_data)
        mem.free(other, mem.mem_user_data)
        mem.free(nil, mem.mem_user_data)                    // as free(NULL): nothing
        #expect(memory.freeBlocks == 2)
    }

    @Test func callocZeroesAndReallocKeepsTheBytesAcrossClassesAndPastTheLargest() {
        let memory = HTTP2MemoryPool()
        let mem = memory.allocator
        let dirty = mem.malloc(64, mem.mem_user_data)!
        memset(dirty, 0xAB, 64)
        mem.free(dirty, mem.mem_user_data)
        let zeroed = mem.calloc(8, 8, mem.mem_user_data)!.assumingMemoryBound(to: UInt8.self)   // reuses `dirty`
        #expect(UnsafeMutableRawPointer(zeroed) == dirty && (0..<64).allSatisfy { zeroed[$0] == 0 })
        #expect(mem.calloc(Int.max, 4, mem.mem_user_data) == nil)                                // overflow refused
        for i in 0..<64 { zeroed[i] = UInt8(i) }
        var block = UnsafeMutableRawPointer(zeroed)
        for size in [64, 1000, 5000, 100_000] {   // same block, a larger class, then malloc'd sizes
            block = mem.realloc(block, size, mem.mem_user_data)!
            let bytes = block.assumingMemoryBound(to: UInt8.self)
            #expect((0..<64).allSatisfy { bytes[$0] == UInt8($0) }, "after realloc to \(size)")
        }
        mem.free(block, mem.mem_user_data)   // a block of its own size: back to free(), not kept
        #expect(memory.freeBlocks == 2)       // the 64- and 1024-byte blocks left behind by realloc
    }

    @Test func eachClassKeepsABoundedNumberOfFreeBlocks() {
        let memory = HTTP2MemoryPool()
        let mem = memory.allocator
        let small = (0..<600).map { _ in mem.malloc(100, mem.mem_user_data)! }
        let large = (0..<80).map { _ in mem.malloc(3000, mem.mem_user_data)! }
        for p in small + large { mem.free(p, mem.mem_user_data) }
        #expect(memory.freeBlocks == 512 + 64)
    }
}

import Atomics

/// Counters of one object (a server, a pool, a listener) with one stripe of slots per worker.
///
/// Each worker writes only its own stripe, from its own thread, so an increment is a relaxed
/// atomic load and store (two plain `mov`s on x86 and arm64: no lock prefix, no read-modify-write,
/// no lock), and the control thread reads every stripe with relaxed loads when it is scraped.
/// A slot's value never goes backwards, so neither does a sum over the stripes. Stripes are 64-byte
/// aligned and padded, so two workers never write the same cache line.
final class MeterBlock: @unchecked Sendable {
    typealias Cell = UnsafeAtomic<UInt64>.Storage
    /// Slots per worker (a multiple of 8: a stripe fills whole cache lines).
    let stride: Int
    let workers: Int
    private let base: UnsafeMutablePointer<Cell>

    /// A block of `slots` zeroed counters for each of `workers` workers (both at least 1).
    init(workers: Int, slots: Int) {
        precondition(workers >= 1 && slots >= 1)
        self.workers = workers
        stride = (slots + 7) & ~7
        let count = workers * stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Cell>.stride, alignment: 64)
        base = raw.bindMemory(to: Cell.self, capacity: count)
        base.initialize(repeating: Cell(0), count: count)
    }

    deinit {
        base.deinitialize(count: workers * stride)
        UnsafeMutableRawPointer(base).deallocate()
    }

    /// The stripe worker `worker` (0 ..< workers) writes. The block must outlive the stripe's use
    /// (the generation that holds both keeps it alive).
    func stripe(worker: Int) -> MeterStripe {
        precondition(worker >= 0 && worker < workers, "worker \(worker) has no stripe in a block of \(workers)")
        return MeterStripe(base: base + worker * stride)
    }

    /// Slot `slot` summed over every worker (any thread).
    func total(_ slot: Int) -> UInt64 {
        var sum: UInt64 = 0
        for w in 0..<workers { sum &+= UnsafeAtomic<UInt64>(at: base + w * stride + slot).load(ordering: .relaxed) }
        return sum
    }

    /// Control thread, at a reload: adds `other`'s totals of `slots` to this block (in worker 0's
    /// stripe, at slots no worker writes in this block: a pool's exchange counts).
    func absorb(_ other: MeterBlock, slots: [Int]) {
        let stripe = stripe(worker: 0)
        for slot in slots { stripe.add(slot, other.total(slot)) }
    }

    /// Slots `range` summed over every worker, in one pass per worker (any thread).
    func totals(_ range: Range<Int>) -> [UInt64] {
        var sums = [UInt64](repeating: 0, count: range.count)
        for w in 0..<workers {
            let stripe = base + w * stride
            for (i, slot) in range.enumerated() { sums[i] &+= UnsafeAtomic<UInt64>(at: stripe + slot).load(ordering: .relaxed) }
        }
        return sums
    }
}

/// One worker's slots in a `MeterBlock`. Written only on that worker's thread.
struct MeterStripe {
    let base: UnsafeMutablePointer<MeterBlock.Cell>

    /// Adds `n` to `slot` (single writer: a plain load and store, see `MeterBlock`).
    @inline(__always)
    func add(_ slot: Int, _ n: UInt64 = 1) {
        let cell = UnsafeAtomic<UInt64>(at: base + slot)
        cell.store(cell.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    /// Subtracts one from a gauge slot (wrapping: the scrape reads the sum as a signed value).
    @inline(__always)
    func subtract(_ slot: Int, _ n: UInt64 = 1) {
        let cell = UnsafeAtomic<UInt64>(at: base + slot)
        cell.store(cell.load(ordering: .relaxed) &- n, ordering: .relaxed)
    }

    /// Counts one observation of `microseconds` in the histogram whose first slot is `histogram`
    /// (`LatencyBuckets.slots` slots: one per bucket, not cumulative, then the sum in µs).
    @inline(__always)
    func observe(_ histogram: Int, microseconds: UInt64) {
        add(histogram + LatencyBuckets.index(microseconds: microseconds))
        add(histogram + LatencyBuckets.sumSlot, microseconds)
    }
}

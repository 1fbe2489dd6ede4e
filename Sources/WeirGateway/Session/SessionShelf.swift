/// Buffers of ended client sessions for new ones: a new connection's session takes its action list,
/// its server-request head buffer and its client-address bytes from here instead of allocating
/// them (three allocations per connection). One per worker, used on its loop's thread.
///
/// A buffer is kept emptied, with its capacity, if there is room and it is small. If a copy of it
/// still lives elsewhere, its next write copies on write: safe, only not cheaper.
struct SessionShelf {
    /// The most action lists kept (byte arrays: twice as many, two per session).
    static let count = 32
    /// A byte array whose capacity grew past this is dropped instead of kept.
    static let maxBytesKept = 8192
    private var actionLists: [SessionActions] = []
    private var byteArrays: [[UInt8]] = []

    /// An empty action list for a new session: a kept one, or a new one.
    mutating func takeActions() -> SessionActions { actionLists.popLast() ?? SessionActions() }

    /// An empty byte array for a new session: a kept one (with capacity), or a new empty one.
    mutating func takeBytes() -> [UInt8] { byteArrays.popLast() ?? [] }

    /// Takes `actions` (leaving an empty list without storage in its place) and keeps it emptied
    /// (its stale elements are plain values: `SessionAction` holds no references).
    mutating func keep(_ actions: inout SessionActions) {
        var taken = SessionActions(reserving: 0)
        swap(&taken, &actions)
        guard actionLists.count < Self.count else { return }
        taken.removeAll()
        actionLists.append(taken)
    }

    /// Takes `bytes` (leaving an empty array in its place) and keeps it emptied.
    mutating func keep(_ bytes: inout [UInt8]) {
        var taken: [UInt8] = []
        swap(&taken, &bytes)
        guard byteArrays.count < 2 * Self.count, taken.capacity > 0, taken.capacity <= Self.maxBytesKept else { return }
        taken.removeAll(keepingCapacity: true)
        byteArrays.append(taken)
    }

    /// How many action lists and byte arrays are kept (for tests).
    var keptCounts: (actionLists: Int, byteArrays: Int) { (actionLists.count, byteArrays.count) }
}

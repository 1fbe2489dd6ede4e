/// Reusable storage for the heads a parser returns: the copy of the head's bytes and its field
/// table. A parser given one empties it, fills it and returns a head that shares its buffers. Once
/// that head is gone (the caller dropped its last copy), the next parse refills the same buffers:
/// no allocation per message on a kept-alive connection. While the head is alive, a parse into the
/// storage copies on write and leaves the head untouched, so reuse is never unsafe, only less useful.
public struct HeadStorage: Sendable {
    @usableFromInline var bytes: [UInt8] = []
    @usableFromInline var fields: [HeaderField] = []

    public init() {}

    /// Replaces the stored bytes with `source`, keeping the capacity.
    @inlinable
    mutating func setBytes(_ source: UnsafeRawBufferPointer) {
        // One replace: emptying the array first costs a call of its own.
        bytes.replaceSubrange(0..<bytes.count, with: UnsafeRawBufferPointer(source))
    }
}

/// Head storages of ended connections, kept for new ones: a new connection's first heads are then
/// parsed into buffers that already have room, instead of growing fresh ones (four allocations per
/// connection). One shelf per loop thread. Bounded: at most `count` storages, each kept only if its
/// buffers stayed small, so a burst of connections or one huge head does not pin memory.
public struct HeadStorageShelf {
    public static let count = 32
    /// A storage whose byte buffer grew past this is dropped instead of kept.
    public static let maxBytesKept = 8192
    public static let maxFieldsKept = 64
    private var spare: [HeadStorage] = []

    public init() {}

    /// A storage for a new connection: a kept one, or a new empty one.
    public mutating func take() -> HeadStorage { spare.popLast() ?? HeadStorage() }

    /// Keeps `storage` for a later `take` if there is room and its buffers are small. A head parsed
    /// into it may still be alive (its connection's last log line, say): the storage's next parse then
    /// copies on write, which is safe, only not cheaper.
    public mutating func put(_ storage: HeadStorage) {
        guard spare.count < Self.count, storage.bytes.capacity <= Self.maxBytesKept,
              storage.fields.capacity <= Self.maxFieldsKept else { return }
        if spare.capacity == 0 { spare.reserveCapacity(Self.count) }
        spare.append(storage)
    }

    /// How many storages are kept.
    public var keptCount: Int { spare.count }
}

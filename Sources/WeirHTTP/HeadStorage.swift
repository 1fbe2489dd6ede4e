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

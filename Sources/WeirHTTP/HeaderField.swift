/// One field line of a parsed head, as offsets into the head's `bytes`.
public struct HeaderField: Sendable, Equatable {
    /// The field name bytes (a non-empty token, case as received).
    public var name: Range<Int>
    /// The field value bytes with leading and trailing OWS (SP / HTAB) removed; may be empty.
    public var value: Range<Int>

    /// Creates a field from two ranges into the same head bytes.
    @inlinable
    public init(name: Range<Int>, value: Range<Int>) {
        self.name = name
        self.value = value
    }
}

/// What request and response heads have in common: the received bytes and the field lines
/// indexing them, and the look-ups built on those.
public protocol HTTPHead {
    /// The head exactly as received; every range of the head indexes it.
    var bytes: [UInt8] { get }
    /// Field lines in received order; values trimmed of OWS.
    var fields: [HeaderField] { get }
}

extension HTTPHead {
    /// The value of the first field named `lowercasedName` (compared case-insensitively), or nil.
    /// Precondition: `lowercasedName` is ASCII. Not for the hot path (use `fieldName(_:is:)`).
    public func value(of lowercasedName: String) -> Range<Int>? {
        HeadAccessors.value(bytes, fields, of: lowercasedName)
    }

    /// `bytes[r]` decoded as UTF-8 (invalid bytes replaced). Precondition: `r` lies within `bytes`.
    public func string(_ r: Range<Int>) -> String { HeadAccessors.string(bytes, r) }

    /// true when field i's name equals `lowercasedName` ASCII-case-insensitively. Fast, no allocation.
    /// Precondition: `0 <= i < fields.count`; `lowercasedName` is lowercase ASCII.
    @inlinable
    public func fieldName(_ i: Int, is lowercasedName: StaticString) -> Bool {
        HeadAccessors.fieldName(bytes, fields, i, is: lowercasedName)
    }

    /// true when the comma-separated list value in `range` contains `lowercasedToken` as an element
    /// (case-insensitive, OWS trimmed). Precondition: `range` lies within `bytes`; token is lowercase ASCII.
    @inlinable
    public func listContains(_ range: Range<Int>, token lowercasedToken: StaticString) -> Bool {
        HeadAccessors.listContains(bytes, range, token: lowercasedToken)
    }

    /// Calls `body` with each non-empty element of the comma-separated list value in `range`, in
    /// order, as a range of `bytes` trimmed of OWS. Empty elements (", ,") are skipped, as RFC 9110
    /// §5.6.1 asks of recipients. No allocation. Precondition: `range` lies within `bytes`.
    @inlinable
    public func forEachListElement(_ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        bytes.withUnsafeBytes { buf in
            var it = ListElements(buf, range)
            while let e = it.next() {
                if !e.isEmpty { body(e) }
            }
        }
    }
}

/// Implementations of the field look-up helpers shared by `RequestHead` and `ResponseHead`.
@usableFromInline
enum HeadAccessors {
    @inlinable
    static func fieldName(_ bytes: [UInt8], _ fields: [HeaderField], _ i: Int, is lowercasedName: StaticString) -> Bool {
        let name = fields[i].name
        return bytes.withUnsafeBytes { ASCII.equalsLowercased($0, name, lowercasedName) }
    }

    @inlinable
    static func listContains(_ bytes: [UInt8], _ range: Range<Int>, token: StaticString) -> Bool {
        bytes.withUnsafeBytes { listContainsToken($0, range, token) }
    }

    @usableFromInline
    static func value(_ bytes: [UInt8], _ fields: [HeaderField], of lowercasedName: String) -> Range<Int>? {
        let wanted = Array(lowercasedName.utf8)
        for f in fields where f.name.count == wanted.count {
            var equal = true
            var j = 0
            for k in f.name {
                if ASCII.lower(bytes[k]) != ASCII.lower(wanted[j]) { equal = false; break }
                j += 1
            }
            if equal { return f.value }
        }
        return nil
    }

    @usableFromInline
    static func string(_ bytes: [UInt8], _ r: Range<Int>) -> String {
        String(decoding: bytes[r], as: UTF8.self)
    }
}

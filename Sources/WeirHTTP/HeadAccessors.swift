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

import WeirHTTP

/// Finds a cookie's value in a request's Cookie fields (RFC 6265 §5.4: `name=value` pairs
/// separated by "; "), as a range of the head's bytes.
enum CookieLookup {
    /// The value of the first cookie called `name` (exact, case-sensitive), or nil.
    static func value(named name: String, in head: RequestHead) -> Range<Int>? {
        let wanted = Array(name.utf8)
        let bytes = head.bytes
        for i in head.fields.indices where head.fieldName(i, is: "cookie") {
            let field = head.fields[i].value
            var start = field.lowerBound
            while start < field.upperBound {
                var end = start
                while end < field.upperBound && bytes[end] != UInt8(ascii: ";") { end += 1 }
                var a = start
                while a < end && bytes[a] == UInt8(ascii: " ") { a += 1 }
                if let eq = bytes[a..<end].firstIndex(of: UInt8(ascii: "=")), bytes[a..<eq].elementsEqual(wanted) {
                    var v = eq + 1, w = end
                    while w > v && bytes[w - 1] == UInt8(ascii: " ") { w -= 1 }
                    if w - v >= 2 && bytes[v] == UInt8(ascii: "\"") && bytes[w - 1] == UInt8(ascii: "\"") { v += 1; w -= 1 }
                    return v..<w
                }
                start = end + 1
            }
        }
        return nil
    }
}

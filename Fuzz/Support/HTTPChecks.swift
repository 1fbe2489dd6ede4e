// Invariants shared by the request and response head targets. Written from RFC 9110/9112, not from
// WeirHTTP's own character tables, so a wrong table in the parser is caught rather than mirrored.
import WeirHTTP

/// RFC 9110 §5.6.2 tchar.
func isTChar(_ b: UInt8) -> Bool {
    switch b {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
    default: return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
    }
}

/// RFC 9110 §5.5 field-vchar / obs-text, SP, HTAB: the only bytes allowed inside a field value.
func isFieldValueByte(_ b: UInt8) -> Bool { b == 0x09 || (b >= 0x20 && b != 0x7F) }

/// The bytes `range` of a head as an array.
func slice(_ bytes: [UInt8], _ range: Range<Int>) -> [UInt8] { Array(bytes[range]) }

/// Checks what every parsed head promises whatever its kind:
/// - `head.bytes` is exactly `input[start..<consumed]` (what is forwarded is what was parsed, verbatim);
/// - it ends with the empty line CRLF CRLF and holds no bare CR or LF elsewhere;
/// - every field range lies inside `bytes`; names are non-empty tokens followed directly by ":";
///   values contain only field bytes and no leading or trailing SP/HTAB;
/// - fields are in received order and do not overlap.
func checkHeadBytes(_ head: some HTTPHead, input: [UInt8], start: Int, consumed: Int) {
    let bytes = head.bytes
    require(consumed <= input.count, "consumed \(consumed) > input length \(input.count)")
    require(start <= consumed && Array(input[start..<consumed]) == bytes,
            "head bytes are not the input bytes \(start)..<\(consumed): \(show(bytes))")
    require(bytes.count >= 4 && Array(bytes.suffix(4)) == [13, 10, 13, 10], "head does not end with CRLFCRLF: \(show(bytes))")
    for (i, b) in bytes.enumerated() {
        if b == 13 { require(i + 1 < bytes.count && bytes[i + 1] == 10, "bare CR at \(i) in accepted head \(show(bytes))") }
        if b == 10 { require(i > 0 && bytes[i - 1] == 13, "bare LF at \(i) in accepted head \(show(bytes))") }
        if b == 0 { invariantBroken("NUL at \(i) in accepted head \(show(bytes))", file: #fileID, line: #line) }
    }
    var previousEnd = 0
    for f in head.fields {
        require(f.name.lowerBound >= previousEnd && f.name.upperBound <= bytes.count, "field name range \(f.name) out of order or bounds")
        require(f.value.lowerBound >= f.name.upperBound && f.value.upperBound <= bytes.count - 2, "field value range \(f.value) out of bounds")
        require(!f.name.isEmpty && slice(bytes, f.name).allSatisfy(isTChar), "field name is not a token: \(show(slice(bytes, f.name)))")
        require(bytes[f.name.upperBound] == 0x3A, "field name not followed by ':'")
        let value = slice(bytes, f.value)
        require(value.allSatisfy(isFieldValueByte), "field value holds a forbidden byte: \(show(value))")
        if let first = value.first, let last = value.last {
            require(first != 0x20 && first != 0x09 && last != 0x20 && last != 0x09, "field value not trimmed: \(show(value))")
        }
        // Nothing between the value and its CRLF but OWS (the value is the whole rest of the line).
        var k = f.value.upperBound
        while bytes[k] == 0x20 || bytes[k] == 0x09 { k += 1 }
        require(bytes[k] == 13, "field value \(show(value)) stops before the end of its line")
        previousEnd = f.value.upperBound
    }
}

/// `name: value` CRLF for every field, then the empty line: the canonical form a re-serialiser writes.
func serializeFields(_ head: some HTTPHead) -> [UInt8] {
    var out: [UInt8] = []
    for f in head.fields {
        out += slice(head.bytes, f.name)
        out += Array(": ".utf8)
        out += slice(head.bytes, f.value)
        out += [13, 10]
    }
    return out + [13, 10]
}

/// The fields as (name, value) byte pairs, to compare heads parsed from different bytes.
func fieldPairs(_ head: some HTTPHead) -> [[UInt8]] {
    head.fields.flatMap { [slice(head.bytes, $0.name), slice(head.bytes, $0.value)] }
}

/// Checks the general contract of a `ParseResult` error: status from the allowed set, offset within
/// the input, a one-line reason.
func checkError(_ e: HTTPParseError, inputCount: Int, allowed: Set<Int>) {
    require(allowed.contains(e.status), "unexpected status \(e.status): \(e)")
    require(e.offset >= 0 && e.offset <= inputCount, "error offset \(e.offset) outside 0...\(inputCount): \(e)")
    require(!e.reason.isEmpty && !e.reason.utf8.contains(13) && !e.reason.utf8.contains(10), "reason not one line: \(e)")
}

/// Whether `input` (an HTTP head) contains a field named `lowercasedName` in its header section.
/// Independent re-scan used to cross-check framing decisions.
func hasField(_ head: some HTTPHead, _ lowercasedName: String) -> Bool {
    head.value(of: lowercasedName) != nil
}

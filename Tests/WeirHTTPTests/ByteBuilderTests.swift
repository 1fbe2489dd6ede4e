import Testing
@testable import WeirHTTP

/// `ByteBuilder`: appends in pieces, grows past its first capacity without losing bytes, and
/// starts over on `removeAll`.
@Suite struct ByteBuilderTests {
    private func text(_ b: borrowing ByteBuilder) -> String { String(decoding: b.bytes, as: UTF8.self) }

    @Test func appendsPiecesAndFieldLines() {
        var b = ByteBuilder(capacity: 16)
        b.append("GET")
        let name = Array("accept".utf8), value = Array("*/*".utf8), empty: [UInt8] = []
        name.withUnsafeBytes { n in value.withUnsafeBytes { v in b.append(n, ": ", v, then: "\r\n") } }
        value.withUnsafeBytes { b.append("Host: ", $0, then: "\r\n") }
        empty.withUnsafeBytes { e in b.append(e, ": ", e, then: "") }   // empty pieces: only the separator
        empty.withUnsafeBytes { b.append($0) }
        #expect(text(b) == "GETaccept: */*\r\nHost: */*\r\n: ")
        #expect(b.count == 29 && !b.isEmpty)
    }

    @Test func growsPastItsCapacityKeepingTheBytesAndStartsOverOnRemoveAll() {
        var b = ByteBuilder(capacity: 16)
        var expected: [UInt8] = []
        for i in 0..<300 {
            let piece = Array(repeating: UInt8(ascii: "a") + UInt8(i % 26), count: i % 40)
            piece.withUnsafeBytes { b.append($0) }
            expected += piece
        }
        #expect(Array(b.bytes) == expected)
        b.removeAll()
        #expect(b.isEmpty && b.bytes.count == 0)
        var other = ByteBuilder(capacity: 4)
        other.append("again")
        b.append(other)
        #expect(text(b) == "again")
    }
}

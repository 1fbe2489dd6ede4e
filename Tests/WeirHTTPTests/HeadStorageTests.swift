import Testing
@testable import WeirHTTP

/// Parsing into a `HeadStorage`: the buffers are reused once the previous head is gone, and a head
/// that is still alive never changes when the storage is parsed into again.
@Suite struct HeadStorageTests {
    private func request(_ text: String, _ storage: inout HeadStorage) -> RequestHead? {
        Array(text.utf8).withUnsafeBytes { RequestHeadParser.parse($0, limits: ParserLimits(), storage: &storage) }.head
    }

    private func response(_ text: String, _ storage: inout HeadStorage) -> ResponseHead? {
        Array(text.utf8).withUnsafeBytes {
            ResponseHeadParser.parse($0, requestWasHEAD: false, limits: ParserLimits(), storage: &storage)
        }.head
    }

    private func address(_ bytes: [UInt8]) -> Int { bytes.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress) } }
    private func address(_ fields: [HeaderField]) -> Int { fields.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress) } }

    @Test func aDroppedRequestHeadLeavesItsBuffersToTheNextOne() throws {
        var storage = HeadStorage()
        var first = request("GET /a HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n", &storage)
        let bytes = address(try #require(first).bytes), fields = address(try #require(first).fields)
        first = nil
        let second = try #require(request("GET /bb HTTP/1.1\r\nHost: b.example\r\n\r\n", &storage))
        #expect(address(second.bytes) == bytes)
        #expect(address(second.fields) == fields)
        #expect(second.string(second.target) == "/bb")
        #expect(second.fields.count == 1)
        #expect(second.value(of: "host").map { second.string($0) } == "b.example")
    }

    @Test func aLiveRequestHeadIsNotChangedByTheNextParse() throws {
        var storage = HeadStorage()
        let first = try #require(request("GET /a HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n", &storage))
        let second = try #require(request("POST /other HTTP/1.1\r\nHost: b.example\r\nContent-Length: 0\r\n\r\n", &storage))
        #expect(first.string(first.target) == "/a")
        #expect(first.value(of: "host").map { first.string($0) } == "a.example")
        #expect(first.fields.count == 2)
        #expect(second.string(second.target) == "/other")
        #expect(address(first.bytes) != address(second.bytes))
    }

    @Test func responseHeadsReuseTheirBuffersToo() throws {
        var storage = HeadStorage()
        var first = response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: x\r\n\r\n", &storage)
        let bytes = address(try #require(first).bytes)
        first = nil
        let second = try #require(response("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", &storage))
        #expect(address(second.bytes) == bytes)
        #expect(second.status == 404)
        #expect(second.framing == .contentLength(0))
    }

    @Test func aShelvedStorageServesTheNextConnectionWithItsBuffers() throws {
        var shelf = HeadStorageShelf()
        var storage = shelf.take()
        #expect(storage.bytes.capacity == 0)
        _ = try #require(request("GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", &storage))
        let bytesAt = address(storage.bytes), fieldsAt = address(storage.fields)
        shelf.put(storage)
        storage = HeadStorage()
        #expect(shelf.keptCount == 1)
        var next = shelf.take()
        #expect(shelf.keptCount == 0)
        let head = try #require(request("GET /b HTTP/1.1\r\nHost: b\r\n\r\n", &next))
        #expect(head.string(head.target) == "/b")
        #expect(address(next.bytes) == bytesAt && address(next.fields) == fieldsAt)
    }

    @Test func aShelfKeepsFewSmallStorages() throws {
        var shelf = HeadStorageShelf()
        var big = HeadStorage()
        let filler = String(repeating: "x", count: HeadStorageShelf.maxBytesKept + 1)
        _ = try #require(request("GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(filler)\r\n\r\n", &big))
        shelf.put(big)
        #expect(shelf.keptCount == 0)   // a huge head's buffer is not pinned
        var many = HeadStorage()
        let fields = (0...HeadStorageShelf.maxFieldsKept).map { "X-\($0): v\r\n" }.joined()
        _ = try #require(request("GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n", &many))
        shelf.put(many)
        #expect(shelf.keptCount == 0)
        for _ in 0..<(HeadStorageShelf.count + 5) {
            var s = HeadStorage()
            _ = request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &s)
            shelf.put(s)
        }
        #expect(shelf.keptCount == HeadStorageShelf.count)
    }
}

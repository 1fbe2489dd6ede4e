import Testing
@testable import WeirHTTP

/// Runs `decoder` over `body` delivered in pieces cut at `cuts` (increasing offsets), the way a
/// connection would: unconsumed bytes stay buffered and more are appended.
/// Returns the de-chunked data, the framing bytes seen, where the message ended, or the error.
struct ChunkRun {
    var data: [UInt8] = []
    var framing: [UInt8] = []
    var end: Int? = nil
    var error: HTTPParseError? = nil
}

func runChunked(_ body: [UInt8], cuts: [Int] = [], maxTrailerBytes: Int = 16384) -> ChunkRun {
    var decoder = ChunkedDecoder(maxTrailerBytes: maxTrailerBytes)
    var run = ChunkRun()
    var buffer: [UInt8] = []
    var consumed = 0  // body offset of buffer[0]
    var delivered = 0
    var pieces = cuts.filter { $0 > 0 && $0 < body.count } + [body.count]
    while true {
        let step = buffer.withUnsafeBytes { decoder.step($0) }
        switch step {
        case .needMore:
            if pieces.isEmpty { return run }
            let next = pieces.removeFirst()
            buffer += body[delivered..<next]
            delivered = next
        case .framing(let n):
            precondition(n > 0 && n <= buffer.count)
            run.framing += buffer[0..<n]
            buffer.removeFirst(n)
            consumed += n
        case .data(let n):
            let k = min(n, buffer.count)
            run.data += buffer[0..<k]
            buffer.removeFirst(k)
            consumed += k
            decoder.consumedData(k)
        case .done(let n):
            run.framing += buffer[0..<n]
            run.end = consumed + n
            return run
        case .error(let e):
            run.error = e
            return run
        }
    }
}

func runChunked(_ text: String, cuts: [Int] = [], maxTrailerBytes: Int = 16384) -> ChunkRun {
    runChunked(Array(text.utf8), cuts: cuts, maxTrailerBytes: maxTrailerBytes)
}

@Suite("ChunkedDecoder")
struct ChunkedDecoderTests {
    static let body = "5\r\nhello\r\n1;name=value;q=\"a \\\"quoted\\\" ;str\"\r\n \r\n10 ; ext\r\n0123456789abcdef\r\n0\r\nX-Checksum: abc\r\nX-Other:  v \r\n\r\nNEXT"
    static let expectedData = Array("hello 0123456789abcdef".utf8)

    @Test("de-chunking reconstructs the data and ends right after the final CRLF")
    func dechunk() {
        let run = runChunked(Self.body)
        #expect(run.error == nil)
        #expect(run.data == Self.expectedData)
        #expect(run.end == Self.body.utf8.count - 4)
        // Framing + data accounts for every byte: verbatim pass-through is possible.
        #expect(run.framing.count + run.data.count == run.end)
    }

    @Test("split at every possible byte boundary: same data bytes and same end position")
    func everySplit() {
        let bytes = Array(Self.body.utf8)
        for cut in 1..<bytes.count {
            let run = runChunked(bytes, cuts: [cut])
            #expect(run.error == nil, "cut \(cut)")
            #expect(run.data == Self.expectedData, "cut \(cut)")
            #expect(run.end == bytes.count - 4, "cut \(cut)")
        }
    }

    @Test("delivered one byte at a time")
    func byteByByte() {
        let bytes = Array(Self.body.utf8)
        let run = runChunked(bytes, cuts: Array(1..<bytes.count))
        #expect(run.data == Self.expectedData)
        #expect(run.end == bytes.count - 4)
    }

    @Test("every pair of split points on a smaller body")
    func everyPairOfSplits() {
        let body = Array("3;a=b\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n".utf8)
        for a in 1..<body.count {
            for b in (a + 1)..<body.count {
                let run = runChunked(body, cuts: [a, b])
                #expect(run.data == Array("abcde".utf8) && run.end == body.count, "cuts \(a) \(b)")
            }
        }
    }

    @Test("framing steps report exact byte counts")
    func steps() {
        var d = ChunkedDecoder()
        let bytes = Array("4\r\nwiki\r\n0\r\n\r\n".utf8)
        bytes.withUnsafeBytes { b in
            #expect(d.step(b) == .framing(3))
            #expect(d.step(UnsafeRawBufferPointer(rebasing: b[3...])) == .data(4))
            d.consumedData(2)
            #expect(d.step(UnsafeRawBufferPointer(rebasing: b[5...])) == .data(2))
            d.consumedData(2)
            #expect(d.step(UnsafeRawBufferPointer(rebasing: b[7...])) == .framing(2))
            #expect(d.step(UnsafeRawBufferPointer(rebasing: b[9...])) == .done(5))
            #expect(d.isDone)
            #expect(d.step(UnsafeRawBufferPointer(rebasing: b[14...])) == .done(0))
        }
    }

    @Test("empty body with only the last chunk; uppercase hex; leading zeros")
    func simpleForms() {
        #expect(runChunked("0\r\n\r\n").end == 5)
        #expect(runChunked("A\r\n0123456789\r\n0\r\n\r\n").data.count == 10)
        #expect(runChunked("000a\r\n0123456789\r\n0000\r\n\r\n").data.count == 10)
    }

    @Test("data longer than buffered: .data(N) reports what is left in the chunk")
    func largeChunkAnnounced() {
        var d = ChunkedDecoder()
        Array("ffff\r\nabc".utf8).withUnsafeBytes { b in
            #expect(d.step(b) == .framing(6))
            #expect(d.step(UnsafeRawBufferPointer(rebasing: b[6...])) == .data(0xffff))
            d.consumedData(3)
            #expect(d.step(UnsafeRawBufferPointer(rebasing: b[9...])) == .needMore)
        }
    }

    @Test("rule: chunk-size overflow (a value beyond Int.max, leading zeros aside) → 400")
    func overflow() {
        #expect(runChunked("10000000000000000\r\n").error?.reason.contains("too large") == true)
        #expect(runChunked("8000000000000000\r\n").error?.reason.contains("too large") == true)
        #expect(runChunked("00000000000000001\r\n").error == nil)  // 17 digits, value 1
        // 16 hex digits within Int.max is fine as a size line.
        var d = ChunkedDecoder()
        let step = Array("7fffffffffffffff\r\n".utf8).withUnsafeBytes { d.step($0) }
        #expect(step == .framing(18))
    }

    @Test("rule: bad hex digit in chunk size → 400")
    func badHex() {
        for body in ["g\r\n", "1g\r\n", "-1\r\n", "+1\r\n", "0x1\r\n", " 1\r\n", "\r\n", ";ext\r\n"] {
            let e = runChunked(body).error
            #expect(e?.status == 400, "\(body.debugDescription)")
        }
    }

    @Test("rule: missing CRLF after chunk data → 400")
    func missingCRLFAfterData() {
        #expect(runChunked("3\r\nabcX\r\n0\r\n\r\n").error?.reason.contains("missing CRLF") == true)
        #expect(runChunked("3\r\nabc\rX0\r\n\r\n").error?.reason.contains("missing CRLF") == true)
        #expect(runChunked("3\r\nabc\n0\r\n\r\n").error?.reason.contains("missing CRLF") == true)
        let e = runChunked("3\r\nabcde\r\n").error
        #expect(e?.offset == 6)
    }

    @Test("rule: bare LF or bare CR in a chunk-size line → 400")
    func bareLineEnds() {
        #expect(runChunked("3\nabc\r\n0\r\n\r\n").error?.reason.contains("bare LF") == true)
        #expect(runChunked("3\rabc\r\n0\r\n\r\n").error?.reason.contains("bare CR") == true)
        #expect(runChunked("3\r\nabc\r\n0\r\n\n").error?.status == 400)
        #expect(runChunked("3\r\nabc\r\n0\n\r\n").error?.status == 400)
    }

    @Test("rule: chunk extensions accepted, including quoted strings with escapes and BWS")
    func extensions() {
        let bodies = [
            "3;foo\r\nabc\r\n0\r\n\r\n",
            "3;foo=bar\r\nabc\r\n0\r\n\r\n",
            "3 ; foo = bar ;baz\r\nabc\r\n0\r\n\r\n",
            "3;foo=\"b a;r\"\r\nabc\r\n0\r\n\r\n",
            "3;foo=\"\\\"\\\\\"\r\nabc\r\n0;last=1\r\n\r\n",
        ]
        for body in bodies {
            let run = runChunked(body)
            #expect(run.error == nil, "\(body.debugDescription): \(String(describing: run.error))")
            #expect(run.data == Array("abc".utf8))
        }
    }

    @Test("rule: malformed chunk extensions → 400")
    func badExtensions() {
        for body in ["3;\r\nabc\r\n", "3;=x\r\nabc\r\n", "3;a=\r\nabc\r\n", "3;a=\"x\r\nabc\r\n",
                     "3;a=b c\r\nabc\r\n", "3 \r\nabc\r\n", "3;a=(b)\r\nabc\r\n"] {
            #expect(runChunked(body).error?.status == 400, "\(body.debugDescription)")
        }
    }

    @Test("rule: trailers accepted and passed through in the done step")
    func trailers() {
        let body = "2\r\nok\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n"
        let run = runChunked(body)
        #expect(run.error == nil)
        #expect(run.end == body.utf8.count)
        let tail = String(decoding: run.framing.suffix(32), as: UTF8.self)
        #expect(tail.hasSuffix("0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n"))
    }

    @Test("rule: invalid trailer field syntax → 400")
    func badTrailers() {
        #expect(runChunked("0\r\nBad Name: x\r\n\r\n").error?.reason.contains("trailer") == true)
        #expect(runChunked("0\r\nX: a\r\n folded\r\n\r\n").error?.status == 400)
        #expect(runChunked("0\r\nX: a\u{1}b\r\n\r\n").error?.status == 400)
    }

    @Test("rule: trailer section larger than maxTrailerBytes → 400, also while incomplete")
    func trailersTooLarge() {
        let big = "0\r\nX: " + String(repeating: "v", count: 100) + "\r\n\r\n"
        #expect(runChunked(big, maxTrailerBytes: 64).error?.reason.contains("too large") == true)
        #expect(runChunked("0\r\nX: " + String(repeating: "v", count: 100), maxTrailerBytes: 64).error?.status == 400)
        #expect(runChunked(big, maxTrailerBytes: 200).end == big.utf8.count)
    }

    @Test("rule: endless chunk-size line → 400")
    func endlessSizeLine() {
        let e = runChunked("1;" + String(repeating: "a", count: 5000)).error
        #expect(e?.reason.contains("too long") == true)
    }

    @Test("after an error the decoder keeps reporting one, at the same offset")
    func stickyError() {
        var d = ChunkedDecoder()
        Array("1\r\naX\r\n".utf8).withUnsafeBytes { b in
            #expect(d.step(b) == .framing(3))
            #expect(d.step(UnsafeRawBufferPointer(rebasing: b[3...])) == .data(1))
            d.consumedData(1)
            guard case .error(let e) = d.step(UnsafeRawBufferPointer(rebasing: b[4...])) else { Issue.record("expected error"); return }
            #expect(e.offset == 4)
            guard case .error(let again) = d.step(b) else { Issue.record("expected the error again"); return }
            #expect(again.status == 400 && again.offset == 4)
        }
    }

    @Test("error offsets count from the start of the body")
    func errorOffsets() {
        let e = runChunked("2\r\nab\r\nzz\r\n").error
        #expect(e?.offset == 7)
    }
}

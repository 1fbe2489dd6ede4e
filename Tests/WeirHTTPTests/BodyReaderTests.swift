import Testing
@testable import WeirHTTP

/// What a caller collects by following a `BodyReader`'s steps over `bytes` delivered in pieces
/// (cut at `cuts`), with windows of at most `window` bytes over the buffered input.
struct BodyRun: Equatable {
    var data: [UInt8] = []
    var framing: [UInt8] = []
    var complete = false
    var error: HTTPParseError? = nil
    /// Bytes left unconsumed after the body ended (the next message).
    var rest: [UInt8] = []
}

func runBody(_ framing: BodyFraming, _ bytes: [UInt8], cuts: [Int] = [], window: Int = 256) -> BodyRun {
    var reader = BodyReader(framing)
    var run = BodyRun()
    var buffer: [UInt8] = []
    var delivered = 0
    var pieces = cuts.filter { $0 > 0 && $0 < bytes.count } + [bytes.count]
    var windowSize = window
    while !reader.isComplete {
        let step = buffer.withUnsafeBytes { raw in
            reader.next(UnsafeRawBufferPointer(rebasing: raw.prefix(windowSize)), available: raw.count)
        }
        switch step {
        case .needMore:
            if BodyReader.wantsLargerWindow(after: min(windowSize, buffer.count), available: buffer.count) {
                windowSize = BodyReader.maxFramingBytes
                continue
            }
            if pieces.isEmpty { run.rest = buffer; return run }
            let next = pieces.removeFirst()
            buffer += bytes[delivered..<next]
            delivered = next
        case .data(let n):
            precondition(n > 0 && n <= buffer.count)
            run.data += buffer[0..<n]
            buffer.removeFirst(n)
            windowSize = window
        case .framing(let n):
            precondition(n > 0 && n <= buffer.count)
            run.framing += buffer[0..<n]
            buffer.removeFirst(n)
            windowSize = window
        case .error(let e):
            run.error = e
            return run
        }
    }
    run.complete = true
    run.rest = buffer + bytes[delivered...]
    return run
}

@Suite struct BodyReaderTests {
    let chunked = Array("5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nGET /next".utf8)

    @Test func noBodyIsCompleteAtOnce() {
        #expect(BodyReader(.none).isComplete)
        #expect(BodyReader(.contentLength(0)).isComplete)
        #expect(!BodyReader(.contentLength(1)).isComplete)
    }

    @Test func lengthBodyStopsAtItsEnd() {
        let run = runBody(.contentLength(5), Array("helloGET /".utf8), cuts: [2, 3])
        #expect(run.complete && run.data == Array("hello".utf8) && run.rest == Array("GET /".utf8))
    }

    @Test(arguments: [[], [1], [3, 4, 9], [10, 11, 20, 21, 25, 30]])
    func chunkedBodySplitAnywhereGivesTheSameResult(cuts: [Int]) {
        let run = runBody(.chunked, chunked, cuts: cuts)
        #expect(run.complete)
        #expect(run.data == Array("hello world".utf8))
        #expect(run.framing == Array("5\r\n\r\n6\r\n\r\n0\r\nX-T: 1\r\n\r\n".utf8))
        #expect(run.rest == Array("GET /next".utf8))
    }

    @Test func chunkedBodyWithTinyWindowsNeedsALargerOneForLongFraming() {
        let ext = String(repeating: "x", count: 600)
        let body = Array("3;e=\(ext)\r\nabc\r\n0\r\n\r\n".utf8)
        let run = runBody(.chunked, body, window: 256)
        #expect(run.complete && run.data == Array("abc".utf8))
    }

    @Test func malformedChunkedBodyIsAnError() {
        let run = runBody(.chunked, Array("zz\r\n".utf8))
        #expect(run.error != nil && !run.complete)
    }

    @Test func untilCloseEndsOnlyAtEndOfStream() {
        var reader = BodyReader(.untilClose)
        let step = [UInt8](repeating: 1, count: 10).withUnsafeBytes { reader.next($0, available: 10) }
        #expect(step == .data(10))
        #expect(!reader.isComplete)
        let validEnd = reader.endOfStream()
        #expect(validEnd && reader.isComplete)
    }

    @Test func lengthOrChunkedBodyCutByEndOfStreamIsTruncated() {
        var length = BodyReader(.contentLength(4))
        let lengthEnd = length.endOfStream()
        var chunked = BodyReader(.chunked)
        let chunkedEnd = chunked.endOfStream()
        #expect(!lengthEnd && !chunkedEnd)
    }
}

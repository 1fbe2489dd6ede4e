import Testing
@testable import WeirHTTP

/// Deterministic generator so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Robustness")
struct RobustnessTests {
    @Test("de-chunking random bodies split at random points reconstructs the data")
    func randomChunkedRoundTrip() {
        var rng = SplitMix64(state: 42)
        for _ in 0..<300 {
            var data: [UInt8] = []
            var body: [UInt8] = []
            for _ in 0..<Int.random(in: 0...6, using: &rng) {
                let size = Int.random(in: 1...300, using: &rng)
                let chunk = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
                data += chunk
                body += Array(String(size, radix: 16, uppercase: Bool.random(using: &rng)).utf8)
                if Bool.random(using: &rng) { body += Array(";x=\"y\"".utf8) }
                body += [13, 10] + chunk + [13, 10]
            }
            body += Array("0\r\n".utf8)
            if Bool.random(using: &rng) { body += Array("T: v\r\n".utf8) }
            body += [13, 10]
            let cuts = (0..<Int.random(in: 0...8, using: &rng)).map { _ in Int.random(in: 1...body.count, using: &rng) }.sorted()
            let run = runChunked(body + Array("GET".utf8), cuts: cuts)
            #expect(run.error == nil)
            #expect(run.data == data)
            #expect(run.end == body.count)
        }
    }

    @Test("randomly mutated requests never crash and never consume past the buffer")
    func mutatedRequests() {
        let base = Array("POST /x?y=1 HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n".utf8)
        var rng = SplitMix64(state: 7)
        let interesting: [UInt8] = [0, 9, 10, 13, 32, 44, 58, 127, 128, 255, 0x41]
        for _ in 0..<5000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = Bool.random(using: &rng) ? interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            let cut = Int.random(in: 0...bytes.count, using: &rng)
            for input in [bytes, Array(bytes[0..<cut])] {
                switch parseRequest(bytes: input) {
                case .complete(let head, let consumed):
                    #expect(consumed <= input.count)
                    #expect(head.bytes.count <= consumed)
                    for f in head.fields {
                        #expect(f.name.upperBound <= head.bytes.count && f.value.upperBound <= head.bytes.count)
                    }
                case .error(let e):
                    #expect([400, 414, 431, 505].contains(e.status))
                    #expect(e.offset >= 0 && e.offset <= input.count)
                case .needMore:
                    break
                }
            }
        }
    }

    @Test("a valid request split anywhere: every prefix is needMore, the whole is complete")
    func everyPrefixOfVariousRequests() {
        let requests = [
            "GET / HTTP/1.0\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nProxy-Authorization: Basic eA==\r\n\r\n",
            "\r\n\r\nPUT /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,  chunked\r\nExpect: 100-continue\r\nX-Empty:\r\n\r\n",
        ]
        for text in requests {
            let bytes = Array(text.utf8)
            for n in 0..<bytes.count {
                #expect(parseRequest(bytes: Array(bytes[0..<n])).isNeedMore, "\(text.debugDescription) prefix \(n)")
            }
            #expect(parseRequest(bytes: bytes).consumed == bytes.count)
        }
    }
}

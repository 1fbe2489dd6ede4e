import Testing
@testable import WeirHTTP

@Suite("Helpers")
struct HelpersTests {
    func isHopByHop(_ s: String) -> Bool {
        Array(s.utf8).withUnsafeBytes { HopByHop.isHopByHop($0) }
    }

    @Test("HopByHop: standard hop-by-hop names, case-insensitive")
    func hopByHop() {
        for name in ["Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "UPGRADE", "HTTP2-Settings"] {
            #expect(isHopByHop(name), "\(name)")
        }
        for name in ["Host", "Content-Length", "Proxy-Authorization", "Proxy-Authenticate", "Trailers", "T", "Connectio", ""] {
            #expect(!isHopByHop(name), "\(name)")
        }
    }

    @Test("tchar class matches RFC 9110 §5.6.2 for every byte")
    func tcharTable() {
        let specials = Array("!#$%&'*+-.^_`|~".utf8)
        for b in 0...255 {
            let byte = UInt8(b)
            let expected = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || specials.contains(byte)
            #expect(ASCII.isTChar(byte) == expected, "byte \(b)")
        }
    }

    @Test("host character class: unreserved, sub-delims, ':', '[', ']', '%'")
    func hostTable() {
        let allowed = Set(Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:[]%".utf8))
        for b in 0...255 {
            #expect(ASCII.isHostChar(UInt8(b)) == allowed.contains(UInt8(b)), "byte \(b)")
        }
    }

    @Test("firstLF finds the first LF at every position, with and without the 8-byte fast path")
    func firstLF() {
        for length in 0..<40 {
            for lfAt in 0...length {
                var bytes = [UInt8](repeating: 0x61, count: length)
                if lfAt < length { bytes[lfAt] = 0x0A }
                if lfAt + 3 < length { bytes[lfAt + 3] = 0x0A }
                let found = bytes.withUnsafeBytes { ASCII.firstLF($0, from: 0, to: length) }
                #expect(found == (lfAt < length ? lfAt : nil), "length \(length) lf \(lfAt)")
            }
        }
        // High bytes next to LF must not confuse the SWAR test.
        let tricky: [UInt8] = [0x8A, 0x0B, 0x09, 0xFF, 0x0A, 0x00, 0x0A, 0x0A, 0x0A, 0x0A]
        #expect(tricky.withUnsafeBytes { ASCII.firstLF($0, from: 0, to: tricky.count) } == 4)
        #expect(tricky.withUnsafeBytes { ASCII.firstLF($0, from: 5, to: tricky.count) } == 6)
    }

    @Test("field values: every byte value at every position of a long value is accepted iff it is HTAB, SP, VCHAR or obs-text")
    func fieldValueBytes() {
        for b in 0...255 where b != 0x0D && b != 0x0A {
            let byte = UInt8(b)
            let valid = byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
            for position in 0..<20 {
                var value = Array("abcdefghijklmnopqrst".utf8)
                value[position] = byte
                let prefix = Array("GET / HTTP/1.1\r\nHost: a\r\nX: ".utf8)
                let r = parseRequest(bytes: prefix + value + Array("\r\n\r\n".utf8))
                #expect((r.head != nil) == valid, "byte \(b) at \(position)")
                if !valid { #expect(r.parseError?.offset == prefix.count + position, "byte \(b) at \(position)") }
            }
        }
    }

    @Test("field names: every byte value at every position of a long name is accepted iff it is a tchar, else rejected at that byte")
    func fieldNameBytes() {
        for b in 0...255 where b != 0x0D && b != 0x0A && b != 0x3A {
            let byte = UInt8(b)
            for position in 0..<19 {
                var name = Array("Abcdefgh-jklmnopqrZ".utf8)
                name[position] = byte
                // A second bad byte further on must not hide the first (the 8-byte steps find the lowest).
                if position + 3 < name.count { name[position + 3] = 0x00 }
                let prefix = Array("GET / HTTP/1.1\r\nHost: a\r\n".utf8)
                let r = parseRequest(bytes: prefix + name + Array(": v\r\n\r\n".utf8))
                if ASCII.isTChar(byte) {
                    #expect(r.parseError?.offset == (position + 3 < name.count ? prefix.count + position + 3 : nil), "byte \(b) at \(position)")
                } else {
                    #expect(r.parseError?.offset == prefix.count + position, "byte \(b) at \(position)")
                }
                name[min(position + 3, name.count - 1)] = UInt8(ascii: "q")
                name[position] = byte
                let clean = parseRequest(bytes: prefix + name + Array(": v\r\n\r\n".utf8))
                #expect((clean.head?.fields.last?.name.count == name.count) == ASCII.isTChar(byte), "byte \(b) at \(position)")
            }
        }
    }

    @Test("equalsLowercased and equalsExactly agree with a byte-by-byte comparison for every byte at every position")
    func wordComparisons() {
        let literal: StaticString = "transfer-encoding"
        let expected = Array("transfer-encoding".utf8)
        for b in 0...255 {
            for position in 0..<expected.count {
                var bytes = Array("xTransfer-Encodingy".utf8)
                bytes[1 + position] = UInt8(b)
                let folded = UInt8(b) >= 0x41 && UInt8(b) <= 0x5A ? UInt8(b) | 0x20 : UInt8(b)
                let same = folded == expected[position]
                #expect(bytes.withUnsafeBytes { ASCII.equalsLowercased($0, 1..<18, literal) } == same, "byte \(b) at \(position)")
                #expect(bytes.withUnsafeBytes { HeadBytes.equalsLowercased($0, 1..<18, literal) } == same, "byte \(b) at \(position)")
            }
        }
        for b in 0...255 {
            for position in 0..<8 {
                var bytes = Array("HTTP/1.1".utf8)
                bytes[position] = UInt8(b)
                #expect(bytes.withUnsafeBytes { ASCII.equalsExactly($0, 0..<8, "HTTP/1.1") } == (bytes == Array("HTTP/1.1".utf8)))
            }
        }
        #expect(Array("CONNECTION".utf8).withUnsafeBytes { ASCII.equalsLowercased($0, 0..<10, "connection") })
        #expect(!Array("CONNECTION".utf8).withUnsafeBytes { ASCII.equalsLowercased($0, 0..<9, "connection") })
    }

    @Test("lowerInPlace lowers exactly the first count bytes, letters only, for every count, with and without a readable tail")
    func lowerInPlaceBounds() {
        // Every byte value, so that '@', '[', '`', '{' and bytes past 0x7F show they stay as they are.
        let source = (0..<256).map { UInt8($0) }
        for start in stride(from: 0, to: 240, by: 7) {
            for count in 0...20 {
                for readable in [count, count + 8, 256 - start] where start + readable <= 256 && readable >= count {
                    var bytes = source
                    bytes.withUnsafeMutableBytes { ASCII.lowerInPlace($0.baseAddress! + start, count: count, readable: readable) }
                    let expected = source.enumerated().map { i, b in (start..<start + count).contains(i) ? ASCII.lower(b) : b }
                    #expect(bytes == expected, "start \(start) count \(count) readable \(readable)")
                }
            }
        }
    }

    @Test("HTTPParseError description")
    func errorDescription() {
        let e = HTTPParseError(status: 400, reason: "bad", offset: 7)
        #expect(e.description == "400 bad (at byte 7)")
    }
}

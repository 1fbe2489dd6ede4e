import Testing
import WeirHTTP

private func parse(_ bytes: [UInt8]) -> ProxyParseResult {
    bytes.withUnsafeBytes { ProxyProtocolParser.parse($0) }
}

private func parse(_ text: String) -> ProxyParseResult { parse(Array(text.utf8)) }

private func isError(_ result: ProxyParseResult) -> Bool {
    if case .error = result { return true }
    return false
}

private func v4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ port: UInt16) -> ProxyAddress {
    ProxyAddress(bytes: [a, b, c, d], port: port)
}

/// A v2 header: signature, version/command, family, length, then `body`.
private func v2(command: UInt8 = 0x21, family: UInt8, body: [UInt8]) -> [UInt8] {
    ProxyProtocolParser.v2Signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
}

private let v4Body: [UInt8] = [192, 0, 2, 1, 198, 51, 100, 7, 0xC3, 0x50, 0x01, 0xBB]   // ports 50000, 443

@Suite struct ProxyV1Tests {
    @Test func tcp4GivesBothAddressesAndWhatFollowsIsNotConsumed() {
        let text = "PROXY TCP4 192.0.2.1 198.51.100.7 50000 443\r\nGET / HTTP/1.1\r\n"
        #expect(parse(text) == .complete(.proxied(source: v4(192, 0, 2, 1, 50000), destination: v4(198, 51, 100, 7, 443)),
                                        consumed: 45))
    }

    @Test func tcp6AddressesAreReadAndPrintedCanonically() {
        guard case .complete(.proxied(let source, let destination), let consumed) =
                parse("PROXY TCP6 2001:DB8:0:0::1 ::1 1 65535\r\n") else { Issue.record("not parsed"); return }
        #expect(source.host == "2001:db8::1" && source.port == 1)
        #expect(destination.host == "::1" && destination.port == 65535)
        #expect(consumed == 40)
    }

    @Test func unknownKeepsTheRealPeerAndIgnoresTheRestOfTheLine() {
        #expect(parse("PROXY UNKNOWN\r\n") == .complete(.local, consumed: 15))
        #expect(parse("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nX") == .complete(.local, consumed: 35))
    }

    @Test func aLineLongerThan107BytesIsRefused() {
        let long = "PROXY UNKNOWN " + String(repeating: "x", count: 100)
        #expect(isError(parse(long)))                    // no CRLF in 107 bytes: refused before the end arrives
        #expect(isError(parse(long + "\r\n")))
        let exact = "PROXY UNKNOWN " + String(repeating: "x", count: 91) + "\r\n"   // 107 bytes
        #expect(parse(exact) == .complete(.local, consumed: 107))
    }

    @Test func badNumbersAndAddressesAreRefused() {
        #expect(isError(parse("PROXY TCP4 192.0.2.1 198.51.100.7 65536 443\r\n")))
        #expect(isError(parse("PROXY TCP4 192.0.2.1 198.51.100.7 050 443\r\n")))
        #expect(isError(parse("PROXY TCP4 192.0.2.1 198.51.100.7 -1 443\r\n")))
        #expect(isError(parse("PROXY TCP4 192.0.2.256 198.51.100.7 1 443\r\n")))
        #expect(isError(parse("PROXY TCP4 192.0.2.01 198.51.100.7 1 443\r\n")))
        #expect(isError(parse("PROXY TCP4 ::1 ::1 1 443\r\n")))            // IPv6 under TCP4
        #expect(isError(parse("PROXY TCP6 192.0.2.1 ::1 1 443\r\n")))
        #expect(isError(parse("PROXY TCP6 :1 ::1 1 443\r\n")))
        #expect(isError(parse("PROXY TCP4 192.0.2.1  198.51.100.7 1 443\r\n")))   // two spaces
        #expect(isError(parse("PROXY TCP4 192.0.2.1 198.51.100.7 1\r\n")))         // a word missing
        #expect(isError(parse("PROXY UDP4 192.0.2.1 198.51.100.7 1 2\r\n")))
    }

    @Test func aLineMustEndInCRLF() {
        #expect(isError(parse("PROXY TCP4 192.0.2.1 198.51.100.7 1 2\n")))
        #expect(isError(parse("PROXY TCP4 192.0.2.1 198.51.100.7 1 2\rX")))
        #expect(parse("PROXY TCP4 192.0.2.1 198.51.100.7 1 2\r") == .needMore)
        #expect(isError(parse("PROXY TCP4 192.0.2.1\n198.51.100.7 1 2\r")))   // an error stays one as bytes come
    }

    @Test func anythingButAHeaderIsRefusedAtItsFirstBytes() {
        #expect(isError(parse("GET / HTTP/1.1\r\n")))
        #expect(isError(parse("POST")))                 // "P" then not "PROXY "
        #expect(isError(parse([0x16, 0x03, 0x01])))     // a TLS ClientHello
        #expect(parse("PRO") == .needMore)
        #expect(parse([]) == .needMore)
    }
}

@Suite struct ProxyV2Tests {
    @Test func ipv4AddressesAndPorts() {
        #expect(parse(v2(family: 0x11, body: v4Body) + Array("GET".utf8))
                == .complete(.proxied(source: v4(192, 0, 2, 1, 50000), destination: v4(198, 51, 100, 7, 443)), consumed: 28))
    }

    @Test func ipv6AddressesAndPorts() {
        var body = [UInt8](repeating: 0, count: 36)
        body[0] = 0x20; body[1] = 0x01; body[2] = 0x0d; body[3] = 0xb8; body[15] = 1   // 2001:db8::1
        body[31] = 1                                                                    // ::1
        body[32] = 0x30; body[33] = 0x39; body[34] = 0x1f; body[35] = 0x90              // 12345, 8080
        guard case .complete(.proxied(let source, let destination), 52) = parse(v2(family: 0x21, body: body)) else {
            Issue.record("not parsed"); return
        }
        #expect(source.host == "2001:db8::1" && source.port == 12345)
        #expect(destination.host == "::1" && destination.port == 8080)
    }

    @Test func localKeepsTheRealPeerWhateverTheAddressesSay() {
        #expect(parse(v2(command: 0x20, family: 0x00, body: [])) == .complete(.local, consumed: 16))
        #expect(parse(v2(command: 0x20, family: 0x11, body: v4Body)) == .complete(.local, consumed: 28))
        #expect(parse(v2(command: 0x21, family: 0x00, body: [])) == .complete(.local, consumed: 16))   // UNSPEC
    }

    @Test func tlvsAreSkippedButMustFit() {
        let tlvs: [UInt8] = [0x01, 0x00, 0x02, 0x68, 0x32, 0x04, 0x00, 0x00]   // ALPN "h2", NOOP empty
        #expect(parse(v2(family: 0x11, body: v4Body + tlvs))
                == .complete(.proxied(source: v4(192, 0, 2, 1, 50000), destination: v4(198, 51, 100, 7, 443)), consumed: 36))
        #expect(isError(parse(v2(family: 0x11, body: v4Body + [0x01, 0x00, 0x05, 0x68]))))   // overruns
        #expect(isError(parse(v2(family: 0x11, body: v4Body + [0x01, 0x00]))))               // truncated
    }

    @Test func truncatedHeadersWaitForMore() {
        let whole = v2(family: 0x11, body: v4Body)
        for n in 0..<whole.count { #expect(parse(Array(whole.prefix(n))) == .needMore, "at \(n) bytes") }
    }

    @Test func badSignatureVersionCommandFamilyOrLengthIsRefused() {
        var bad = v2(family: 0x11, body: v4Body)
        bad[5] = 0x0A
        #expect(isError(parse(bad)))
        #expect(isError(parse(v2(command: 0x11, family: 0x11, body: v4Body))))   // version 1 in a v2 header
        #expect(isError(parse(v2(command: 0x22, family: 0x11, body: v4Body))))   // command 2
        #expect(isError(parse(v2(family: 0x41, body: v4Body))))                  // family 4
        #expect(isError(parse(v2(family: 0x12, body: v4Body))))                  // UDP
        #expect(isError(parse(v2(family: 0x11, body: Array(v4Body.prefix(8))))))   // too short for IPv4
        #expect(isError(parse(v2(family: 0x21, body: v4Body))))                  // too short for IPv6
    }

    @Test func anOversizedLengthIsRefusedBeforeItsBytesArrive() {
        let header = ProxyProtocolParser.v2Signature + [0x21, 0x11, 0xFF, 0xFF]
        #expect(isError(parse(header)))
    }
}

@Suite struct ProxyIncrementalTests {
    /// Fed one byte at a time, every prefix but the whole asks for more, and the whole completes.
    @Test(arguments: [
        Array("PROXY TCP4 192.0.2.1 198.51.100.7 50000 443\r\n".utf8),
        Array("PROXY UNKNOWN\r\n".utf8),
        ProxyProtocolParser.v2Signature + [0x21, 0x11, 0, 12] + [192, 0, 2, 1, 198, 51, 100, 7, 0xC3, 0x50, 0x01, 0xBB],
        ProxyProtocolParser.v2Signature + [0x20, 0x00, 0, 0],
    ])
    func byteByByte(_ header: [UInt8]) {
        for n in 0..<header.count { #expect(parse(Array(header.prefix(n))) == .needMore, "at \(n) bytes") }
        guard case .complete(_, let consumed) = parse(header + [0x47]) else { Issue.record("not complete"); return }
        #expect(consumed == header.count)
    }
}

@Suite struct ProxyHeaderWriterTests {
    let client = v4(192, 0, 2, 1, 50000)
    let local = v4(198, 51, 100, 7, 443)

    @Test func v1Bytes() {
        #expect(ProxyHeaderWriter.header(.v1, source: client, destination: local)
                == Array("PROXY TCP4 192.0.2.1 198.51.100.7 50000 443\r\n".utf8))
        let six = ProxyAddress(host: "2001:db8::1", port: 1)!, loop = ProxyAddress(host: "::1", port: 8080)!
        #expect(ProxyHeaderWriter.header(.v1, source: six, destination: loop)
                == Array("PROXY TCP6 2001:db8::1 ::1 1 8080\r\n".utf8))
        #expect(ProxyHeaderWriter.header(.v1, source: nil, destination: nil) == Array("PROXY UNKNOWN\r\n".utf8))
    }

    @Test func v2Bytes() {
        #expect(ProxyHeaderWriter.header(.v2, source: client, destination: local)
                == ProxyProtocolParser.v2Signature + [0x21, 0x11, 0x00, 0x0C] + v4Body)
        #expect(ProxyHeaderWriter.header(.v2, source: nil, destination: nil)
                == ProxyProtocolParser.v2Signature + [0x20, 0x00, 0x00, 0x00])
    }

    @Test func mixedFamiliesAreSentAsIPv6() {
        let six = ProxyAddress(host: "::1", port: 1)!
        #expect(ProxyHeaderWriter.header(.v1, source: six, destination: local)
                == Array("PROXY TCP6 ::1 ::ffff:198.51.100.7 1 443\r\n".utf8))
        let bytes = ProxyHeaderWriter.header(.v2, source: client, destination: six)
        #expect(bytes.count == 52 && bytes[13] == 0x21)
    }

    @Test func whatIsWrittenParsesBack() {
        for version in [ProxyHeaderWriter.Version.v1, .v2] {
            let bytes = ProxyHeaderWriter.header(version, source: client, destination: local)
            #expect(parse(bytes) == .complete(.proxied(source: client, destination: local), consumed: bytes.count))
        }
    }

    @Test func ipTextRoundTrips() {
        for text in ["0.0.0.0", "255.255.255.255", "::", "::1", "2001:db8::", "1:2:3:4:5:6:7:8", "::ffff:192.0.2.1",
                     "fe80::1:0:0:1"] {
            #expect(IPText.parse(Array(text.utf8)[...]).map(IPText.format) == text, "\(text)")
        }
        for bad in ["1.2.3", "1.2.3.4.5", "::1::", "1:2:3:4:5:6:7:8:9", "1:", ":1", "g::1", "01.2.3.4", "", "12345::"] {
            #expect(IPText.parse(Array(bad.utf8)[...]) == nil, "\(bad)")
        }
    }
}

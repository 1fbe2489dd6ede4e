// The PROXY protocol (HAProxy, https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt): a load
// balancer in front of Weir states the client's address in a header before any other byte of the
// connection (before the TLS ClientHello on a TLS listener); Weir can send the same to its servers.

/// An IP address and port as carried in a PROXY protocol header.
public struct ProxyAddress: Sendable, Equatable {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    public var bytes: [UInt8]
    public var port: UInt16

    /// Precondition: `bytes.count` is 4 or 16.
    public init(bytes: [UInt8], port: UInt16) {
        precondition(bytes.count == 4 || bytes.count == 16, "an IP address has 4 or 16 bytes")
        self.bytes = bytes
        self.port = port
    }

    /// Parses a numeric host as Weir prints peers ("192.0.2.1", "2001:db8::1", no brackets); nil otherwise.
    public init?(host: String, port: Int) {
        guard (0...65535).contains(port), let bytes = IPText.parse(Array(host.utf8)[...]) else { return nil }
        self.init(bytes: bytes, port: UInt16(port))
    }

    public var isIPv6: Bool { bytes.count == 16 }

    /// The address as text: dotted quad, or RFC 5952 IPv6 (no brackets).
    public var host: String { IPText.format(bytes) }

    /// This address as 16 bytes (an IPv4 address mapped into IPv6, `::ffff:a.b.c.d`).
    var sixteenBytes: [UInt8] {
        isIPv6 ? bytes : [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + bytes
    }
}

/// A parsed PROXY protocol header.
public enum ProxyHeader: Sendable, Equatable {
    /// v2 LOCAL, v1 `UNKNOWN`, or a family without IP addresses (v2 UNSPEC or UNIX): the connection's real
    /// endpoints stand (a health check of the balancer itself, or a source it cannot describe).
    case local
    /// The client's address and port (`source`) and the address the client connected to (`destination`).
    case proxied(source: ProxyAddress, destination: ProxyAddress)
}

/// What `ProxyProtocolParser.parse` found at the start of a connection.
public enum ProxyParseResult: Sendable, Equatable {
    /// A valid beginning of a header: wait for more bytes.
    case needMore
    /// A complete header of `consumed` bytes (what follows belongs to the client's protocol).
    case complete(ProxyHeader, consumed: Int)
    /// Not a valid header (the connection must be closed): why, for the log.
    case error(String)
}

/// A pure parser of PROXY protocol v1 (text) and v2 (binary) headers.
///
/// It holds no state: call `parse` with every byte received so far (it is cheap, the header is at most
/// `maxHeaderBytes`); it answers `needMore` only while the bytes are a valid beginning of a header, so a
/// client that speaks HTTP or TLS straight away is refused at its first byte.
public enum ProxyProtocolParser {
    /// v1: the longest line, CRLF included (spec §2.1).
    public static let maxV1Bytes = 107
    /// v2: the most bytes of a header accepted here (16 fixed + addresses + TLVs); more is an error.
    public static let maxHeaderBytes = 4096
    /// The 12 bytes every v2 header starts with.
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix = Array("PROXY ".utf8)

    /// Parses the header at the start of `bytes` (every byte received so far on the connection).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> ProxyParseResult {
        guard let first = bytes.first else { return .needMore }
        if first == UInt8(ascii: "P") { return parseV1(bytes) }
        if first == 0x0D { return parseV2(bytes) }
        return .error("not a PROXY protocol header (first byte 0x\(hex(first)))")
    }

    // MARK: v1

    static func parseV1(_ bytes: UnsafeRawBufferPointer) -> ProxyParseResult {
        let prefixLength = min(bytes.count, v1Prefix.count)
        for i in 0..<prefixLength where bytes[i] != v1Prefix[i] {
            return .error("not a PROXY protocol header (v1 must start with \"PROXY \")")
        }
        guard let cr = bytes.firstIndex(of: 0x0D) else {
            if let _ = bytes.firstIndex(of: 0x0A) { return .error("v1 header: line ends without CR") }
            return bytes.count >= maxV1Bytes ? .error("v1 header: longer than \(maxV1Bytes) bytes") : .needMore
        }
        // Checked in the order the bytes come, so that more bytes never undo an error.
        if bytes[..<cr].contains(0x0A) { return .error("v1 header: line ends without CR") }
        if cr + 2 > maxV1Bytes { return .error("v1 header: longer than \(maxV1Bytes) bytes") }
        if cr + 1 == bytes.count { return .needMore }
        guard bytes[cr + 1] == 0x0A else { return .error("v1 header: CR not followed by LF") }
        let line = Array(bytes[v1Prefix.count..<cr])
        let consumed = cr + 2
        let words = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard let family = words.first else { return .error("v1 header: no protocol") }
        if family.elementsEqual("UNKNOWN".utf8) { return .complete(.local, consumed: consumed) }   // the rest is ignored (§2.1)
        let isIPv6: Bool
        if family.elementsEqual("TCP4".utf8) { isIPv6 = false }
        else if family.elementsEqual("TCP6".utf8) { isIPv6 = true }
        else { return .error("v1 header: protocol must be TCP4, TCP6 or UNKNOWN") }
        guard words.count == 5 else {
            return .error("v1 header: expected \"PROXY \(isIPv6 ? "TCP6" : "TCP4") SOURCE DESTINATION SPORT DPORT\"")
        }
        guard let source = IPText.parse(words[1]), let destination = IPText.parse(words[2]),
              (source.count == 16) == isIPv6, (destination.count == 16) == isIPv6 else {
            return .error("v1 header: addresses are not \(isIPv6 ? "IPv6" : "IPv4") addresses")
        }
        guard let sourcePort = port(words[3]), let destinationPort = port(words[4]) else {
            return .error("v1 header: ports must be decimal numbers 0-65535")
        }
        return .complete(.proxied(source: ProxyAddress(bytes: source, port: sourcePort),
                                  destination: ProxyAddress(bytes: destination, port: destinationPort)),
                         consumed: consumed)
    }

    /// A decimal port 0...65535 without leading zeros.
    static func port(_ text: ArraySlice<UInt8>) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        if text.count > 1, text.first == 0x30 { return nil }
        let value = text.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return value <= 65535 ? UInt16(value) : nil
    }

    // MARK: v2

    static func parseV2(_ bytes: UnsafeRawBufferPointer) -> ProxyParseResult {
        let signatureLength = min(bytes.count, v2Signature.count)
        for i in 0..<signatureLength where bytes[i] != v2Signature[i] {
            return .error("not a PROXY protocol header (bad v2 signature)")
        }
        if bytes.count >= 13 {
            let versionCommand = bytes[12]
            guard versionCommand >> 4 == 2 else { return .error("v2 header: version \(versionCommand >> 4), expected 2") }
            guard versionCommand & 0x0F <= 1 else { return .error("v2 header: unknown command \(versionCommand & 0x0F)") }
        }
        guard bytes.count >= 16 else { return .needMore }
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        let total = 16 + length
        guard total <= maxHeaderBytes else {
            return .error("v2 header: \(total) bytes, more than the \(maxHeaderBytes) accepted")
        }
        guard bytes.count >= total else { return .needMore }
        let isLocal = bytes[12] & 0x0F == 0
        let family = bytes[13]
        let addressLength: Int
        switch family {
        case 0x11: addressLength = 12   // TCP over IPv4
        case 0x21: addressLength = 36   // TCP over IPv6
        case 0x00, 0x31: addressLength = 0   // UNSPEC, UNIX stream: no IP addresses
        case 0x12, 0x22, 0x32: return isLocal ? .complete(.local, consumed: total)
            : .error("v2 header: a datagram (UDP) family on a TCP connection")
        default: return .error("v2 header: unknown address family 0x\(hex(family))")
        }
        if family == 0x31 { guard length >= 216 else { return .error("v2 header: too short for UNIX addresses") } }
        guard length >= addressLength else { return .error("v2 header: length \(length) too short for its addresses") }
        let tlvStart = 16 + (family == 0x31 ? 216 : addressLength)
        if let problem = checkTLVs(bytes[tlvStart..<total]) { return .error(problem) }
        if isLocal || addressLength == 0 { return .complete(.local, consumed: total) }
        let size = addressLength == 12 ? 4 : 16
        let source = Array(bytes[16..<(16 + size)])
        let destination = Array(bytes[(16 + size)..<(16 + 2 * size)])
        let ports = 16 + 2 * size
        let sourcePort = UInt16(bytes[ports]) << 8 | UInt16(bytes[ports + 1])
        let destinationPort = UInt16(bytes[ports + 2]) << 8 | UInt16(bytes[ports + 3])
        return .complete(.proxied(source: ProxyAddress(bytes: source, port: sourcePort),
                                  destination: ProxyAddress(bytes: destination, port: destinationPort)),
                         consumed: total)
    }

    /// TLVs (type, 16-bit length, value) are skipped, but each must fit in the header: nil when they do.
    static func checkTLVs(_ tlvs: Slice<UnsafeRawBufferPointer>) -> String? {
        var i = tlvs.startIndex
        while i < tlvs.endIndex {
            guard tlvs.endIndex - i >= 3 else { return "v2 header: truncated TLV" }
            let length = Int(tlvs[i + 1]) << 8 | Int(tlvs[i + 2])
            guard tlvs.endIndex - i - 3 >= length else { return "v2 header: a TLV overruns the header" }
            i += 3 + length
        }
        return nil
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]], as: UTF8.self)
    }
}

/// Writes the PROXY protocol header Weir sends at the start of a connection to a server.
public enum ProxyHeaderWriter {
    /// The protocol version sent.
    public enum Version: Sendable, Equatable { case v1, v2 }

    /// The header stating `source` (the client) and `destination` (the address it connected to); with
    /// either nil, the "no addresses" form: `PROXY UNKNOWN\r\n` (v1) or the LOCAL command (v2), which a
    /// health check sends. Addresses of different families are both sent as IPv6 (IPv4-mapped).
    public static func header(_ version: Version, source: ProxyAddress?, destination: ProxyAddress?) -> [UInt8] {
        switch version {
        case .v1: return v1(source: source, destination: destination)
        case .v2: return v2(source: source, destination: destination)
        }
    }

    static func v1(source: ProxyAddress?, destination: ProxyAddress?) -> [UInt8] {
        guard let source, let destination else { return Array("PROXY UNKNOWN\r\n".utf8) }
        let sameFamily = source.isIPv6 == destination.isIPv6
        let isIPv6 = source.isIPv6 || !sameFamily
        func text(_ a: ProxyAddress) -> String { IPText.format(isIPv6 ? a.sixteenBytes : a.bytes) }
        let line = "PROXY \(isIPv6 ? "TCP6" : "TCP4") \(text(source)) \(text(destination)) \(source.port) \(destination.port)\r\n"
        return Array(line.utf8)
    }

    static func v2(source: ProxyAddress?, destination: ProxyAddress?) -> [UInt8] {
        var out = ProxyProtocolParser.v2Signature
        guard let source, let destination else {
            out += [0x20, 0x00, 0x00, 0x00]   // LOCAL, UNSPEC, no addresses
            return out
        }
        let isIPv6 = source.isIPv6 || destination.isIPv6
        out += [0x21, isIPv6 ? 0x21 : 0x11, 0x00, isIPv6 ? 36 : 12]
        out += isIPv6 ? source.sixteenBytes : source.bytes
        out += isIPv6 ? destination.sixteenBytes : destination.bytes
        out += [UInt8(source.port >> 8), UInt8(source.port & 0xFF), UInt8(destination.port >> 8), UInt8(destination.port & 0xFF)]
        return out
    }
}

/// Numeric IP addresses as text, without Foundation or the C library.
public enum IPText {
    /// Parses a strict dotted quad (no leading zeros) into 4 bytes, or an IPv6 address (with `::`, optionally
    /// a dotted IPv4 tail, no zone) into 16 bytes; nil for anything else.
    public static func parse(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        if text.contains(UInt8(ascii: ":")) { return parseIPv6(text) }
        return parseIPv4(text)
    }

    static func parseIPv4(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        let parts = text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            if part.count > 1, part.first == 0x30 { return nil }
            let value = part.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard value <= 255 else { return nil }
            out.append(UInt8(value))
        }
        return out
    }

    static func parseIPv6(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var head: [UInt16] = [], tail: [UInt16] = []
        var sawGap = false
        if text.first == UInt8(ascii: ":"), !text.starts(with: "::".utf8) { return nil }
        if text.last == UInt8(ascii: ":"), !(text.count >= 2 && text.suffix(2).elementsEqual("::".utf8)) { return nil }
        var groups = text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)[...]
        // "::" at the start or end splits into empty pieces: one gap.
        if text.starts(with: "::".utf8) { groups = groups.dropFirst() }
        if text.count >= 2, text.suffix(2).elementsEqual("::".utf8) { groups = groups.dropLast() }
        for (index, group) in groups.enumerated() {
            if group.isEmpty {
                guard !sawGap else { return nil }
                sawGap = true
                continue
            }
            if index == groups.count - 1, group.contains(UInt8(ascii: ".")) {
                guard let v4 = parseIPv4(group) else { return nil }
                let pair = [UInt16(v4[0]) << 8 | UInt16(v4[1]), UInt16(v4[2]) << 8 | UInt16(v4[3])]
                if sawGap { tail += pair } else { head += pair }
                continue
            }
            guard group.count <= 4, let value = hexValue(group) else { return nil }
            if sawGap { tail.append(value) } else { head.append(value) }
        }
        let missing = 8 - head.count - tail.count
        guard sawGap ? missing >= 1 : missing == 0 else { return nil }
        let all = head + [UInt16](repeating: 0, count: missing) + tail
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    static func hexValue(_ group: ArraySlice<UInt8>) -> UInt16? {
        var value: UInt16 = 0
        for byte in group {
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x41...0x46: digit = byte - 0x41 + 10
            case 0x61...0x66: digit = byte - 0x61 + 10
            default: return nil
            }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    /// 4 bytes as a dotted quad; 16 bytes as RFC 5952 text (longest run of two or more zero groups as `::`,
    /// IPv4-mapped addresses with a dotted tail).
    public static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map { String($0) }.joined(separator: ".") }
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        if groups[0..<5].allSatisfy({ $0 == 0 }), groups[5] == 0xffff {
            return "::ffff:" + format(Array(bytes[12..<16]))
        }
        var bestStart = -1, bestLength = 0, index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > bestLength { bestStart = index; bestLength = end - index }
            index = end
        }
        let hex = groups.map { String($0, radix: 16) }
        guard bestLength >= 2 else { return hex.joined(separator: ":") }
        return hex[0..<bestStart].joined(separator: ":") + "::" + hex[(bestStart + bestLength)...].joined(separator: ":")
    }
}

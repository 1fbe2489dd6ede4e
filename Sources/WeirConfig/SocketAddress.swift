import Foundation

/// A numeric IP address and a port. Host names are never accepted (the gateway does no DNS).
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// Numeric IPv4 (`"127.0.0.1"`) or IPv6 (`"::1"`, no brackets). Addresses produced by `parse` are
    /// canonical: IPv6 in RFC 5952 form (lower case, longest zero run compressed), so equal addresses compare equal.
    public var host: String
    /// TCP port. `parse` accepts 0...65535; whether 0 is acceptable is the caller's concern
    /// (the loader allows it for listeners, "any free port", and rejects it for servers).
    public var port: UInt16
    /// Whether `host` is an IPv6 address.
    public var isIPv6: Bool

    public init(host: String, port: UInt16, isIPv6: Bool) {
        self.host = host
        self.port = port
        self.isIPv6 = isIPv6
    }

    /// `isIPv6` is inferred: a host containing ":" is IPv6.
    public init(host: String, port: UInt16) {
        self.init(host: host, port: port, isIPv6: host.contains(":"))
    }

    /// `"127.0.0.1:9001"` or `"[::1]:9001"`.
    public var description: String {
        isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Parses `"1.2.3.4:80"` or `"[::1]:80"`. Returns nil for host names, a missing port, an IPv6 address
    /// without brackets, and malformed addresses or ports (port must be decimal 0...65535).
    public static func parse(_ text: String) -> SocketAddress? {
        if case .success(let address) = parseDetailed(text) { return address }
        return nil
    }

    // MARK: - Internal parsing with reasons (the loader turns these into error messages)

    enum Problem: Error, Equatable {
        case empty
        case missingPort
        case badPort(String)
        case portOutOfRange(String)
        case hostName(String)
        case badIPv4(String)
        case badIPv6(String)
        case ipv6WithoutBrackets
    }

    static func parseDetailed(_ text: String) -> Result<SocketAddress, Problem> {
        if text.isEmpty { return .failure(.empty) }
        let hostPart: Substring
        let portPart: Substring?
        let bracketed: Bool
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .failure(.badIPv6(String(text.dropFirst()))) }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if rest.isEmpty {
                portPart = nil
            } else if rest.first == ":" {
                portPart = rest.dropFirst()
            } else {
                return .failure(.badIPv6(String(text)))
            }
            bracketed = true
        } else {
            let colons = text.filter { $0 == ":" }.count
            if colons > 1 { return .failure(.ipv6WithoutBrackets) }
            if let colon = text.firstIndex(of: ":") {
                hostPart = text[..<colon]
                portPart = text[text.index(after: colon)...]
            } else {
                hostPart = text[...]
                portPart = nil
            }
            bracketed = false
        }

        let host: String
        if bracketed {
            guard let canonical = canonicalIPv6(hostPart) else { return .failure(.badIPv6(String(hostPart))) }
            host = canonical
        } else {
            if hostPart.isEmpty { return .failure(.badIPv4("")) }
            if !isIPv4(hostPart) {
                let looksNumeric = hostPart.allSatisfy { $0 == "." || ("0"..."9").contains($0) }
                return .failure(looksNumeric ? .badIPv4(String(hostPart)) : .hostName(String(hostPart)))
            }
            host = String(hostPart)
        }

        guard let portText = portPart, !portText.isEmpty else { return .failure(.missingPort) }
        guard portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return .failure(.badPort(String(portText))) }
        guard portText.count <= 5, let value = Int(portText), value <= 65535 else {
            return .failure(.portOutOfRange(String(portText)))
        }
        return .success(SocketAddress(host: host, port: UInt16(value), isIPv6: bracketed))
    }

    /// Strict dotted quad: four decimal parts 0...255, no leading zeros (which some parsers read as octal).
    static func isIPv4<S: StringProtocol>(_ text: S) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
            if part.count > 1 && part.first == "0" { return false }
            guard let value = Int(part), value <= 255 else { return false }
        }
        return true
    }

    /// Parses an IPv6 address (optionally with a trailing dotted IPv4) and returns its RFC 5952 text, or nil.
    /// Zone identifiers ("%eth0") are not accepted.
    static func canonicalIPv6<S: StringProtocol>(_ text: S) -> String? {
        guard let groups = ipv6Groups(String(text)) else { return nil }
        return formatIPv6(groups)
    }

    static func ipv6Groups(_ text: String) -> [UInt16]? {
        if text.isEmpty { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        if halves.count == 2 {
            guard let head = hexGroups(halves[0], allowIPv4Tail: false),
                  let tail = hexGroups(halves[1], allowIPv4Tail: true) else { return nil }
            let missing = 8 - head.count - tail.count
            guard missing >= 1 else { return nil }
            return head + Array(repeating: 0, count: missing) + tail
        }
        guard let groups = hexGroups(halves[0], allowIPv4Tail: true), groups.count == 8 else { return nil }
        return groups
    }

    /// Colon-separated groups of 1-4 hex digits; the last may be a dotted IPv4 address (two groups).
    private static func hexGroups(_ text: String, allowIPv4Tail: Bool) -> [UInt16]? {
        if text.isEmpty { return [] }
        var result: [UInt16] = []
        let fields = text.split(separator: ":", omittingEmptySubsequences: false)
        for (index, field) in fields.enumerated() {
            if index == fields.count - 1 && allowIPv4Tail && field.contains(".") {
                guard isIPv4(field) else { return nil }
                let octets = field.split(separator: ".").compactMap { UInt16($0) }
                result.append(octets[0] << 8 | octets[1])
                result.append(octets[2] << 8 | octets[3])
                continue
            }
            guard !field.isEmpty, field.count <= 4, field.utf8.allSatisfy(isHexDigit),
                  let value = UInt16(field, radix: 16) else { return nil }
            result.append(value)
        }
        return result
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
    }

    private static func formatIPv6(_ groups: [UInt16]) -> String {
        // IPv4-mapped (::ffff:a.b.c.d) keeps the dotted tail, as RFC 5952 section 5 recommends.
        if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xffff {
            return "::ffff:\(groups[6] >> 8).\(groups[6] & 0xff).\(groups[7] >> 8).\(groups[7] & 0xff)"
        }
        // Longest run of at least two zero groups (first one on a tie) becomes "::".
        var bestStart = -1, bestLength = 0
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > bestLength { bestStart = index; bestLength = end - index }
                index = end
            } else {
                index += 1
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        if bestLength < 2 { return hex.joined(separator: ":") }
        let left = hex[0..<bestStart].joined(separator: ":")
        let right = hex[(bestStart + bestLength)...].joined(separator: ":")
        return left + "::" + right
    }
}

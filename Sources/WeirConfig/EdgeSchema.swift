import TOMLKit

// Edge integration keys (issue 13): the PROXY protocol on listeners (`proxy_protocol`,
// `proxy_protocol_from`) and towards servers (`[pool] send_proxy`), and the RFC 7239 `Forwarded`
// field (`[pool] forwarded`).

/// An IP network: an address and how many of its leading bits count (`"198.51.100.0/24"`, `"::1/128"`).
public struct NetworkPrefix: Sendable, Equatable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order, with every bit after `length` zero.
    public var bytes: [UInt8]
    /// 0...32 (IPv4) or 0...128 (IPv6).
    public var length: Int

    /// The loopback networks, `127.0.0.0/8` and `::1/128`: `proxy_protocol_from` when it is not written.
    public static let loopback = [NetworkPrefix(bytes: [127, 0, 0, 0], length: 8),
                                  NetworkPrefix(bytes: [UInt8](repeating: 0, count: 15) + [1], length: 128)]

    public init(bytes: [UInt8], length: Int) {
        self.bytes = bytes
        self.length = length
    }

    /// Whether `address` (4 or 16 bytes) is in this network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
    /// how a dual-stack listener sees an IPv4 client) is matched as the IPv4 address it holds.
    public func contains(_ address: [UInt8]) -> Bool {
        var address = address
        if address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xff, address[11] == 0xff {
            address = Array(address[12..<16])
        }
        guard address.count == bytes.count else { return false }
        var bits = length
        for i in bytes.indices where bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xff : ~(0xff >> UInt8(bits))
            if address[i] & mask != bytes[i] { return false }
            bits -= 8
        }
        return true
    }

    public var description: String { "\(Self.format(bytes))/\(length)" }

    /// The outcome of reading `"ADDRESS/LENGTH"` (or a bare address, a network of one).
    enum Parsed: Equatable {
        case network(NetworkPrefix)
        /// Not an address, or a length out of range.
        case malformed
        /// Bits set after the length: the network that was probably meant.
        case hostBits(NetworkPrefix)
    }

    static func parse(_ text: String) -> Parsed {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = addressBytes(String(parts[0])) else { return .malformed }
        let maximum = address.count * 8
        var length = maximum
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.count <= 3, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let value = Int(digits), value <= maximum else { return .malformed }
            length = value
        }
        var masked = address
        var bits = length
        for i in masked.indices {
            let keep: UInt8 = bits >= 8 ? 0xff : bits <= 0 ? 0 : ~(0xff >> UInt8(bits))
            masked[i] &= keep
            bits -= 8
        }
        let network = NetworkPrefix(bytes: masked, length: length)
        return masked == address ? .network(network) : .hostBits(network)
    }

    static func addressBytes(_ text: String) -> [UInt8]? {
        if SocketAddress.isIPv4(text) { return text.split(separator: ".").map { UInt8($0)! } }
        guard !text.contains("%"), let groups = SocketAddress.ipv6Groups(text) else { return nil }
        return groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        let groups = (0..<8).map { String(UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]), radix: 16) }
        return SocketAddress.canonicalIPv6(groups.joined(separator: ":")) ?? groups.joined(separator: ":")
    }
}

/// `[pool] send_proxy`: the PROXY protocol version sent at the start of every connection to the pool's servers.
public enum SendProxy: String, Sendable, Equatable, CaseIterable {
    /// The text header (`PROXY TCP4 ...`).
    case v1
    /// The binary header.
    case v2
}

extension ValueRules {
    static let networkForm = #"expected a network "ADDRESS/LENGTH" such as "198.51.100.0/24" or "::1/128" (or one address)"#
    static let networksForm = #"expected an array of networks, e.g. proxy_protocol_from = ["127.0.0.1/32", "198.51.100.0/24"]"#
}

extension Rule where Value == [NetworkPrefix] {
    /// `proxy_protocol_from`: a non-empty array of networks; a network with host bits set names the one meant.
    static var networks: Rule {
        Rule { value, site, reader in
            guard let array = value.array else {
                reader.fail(site, "\(ValueRules.networksForm), found \(ValueRules.describe(value))")
                return nil
            }
            guard !array.isEmpty else {
                reader.fail(site, "must list at least one network (a listener that trusts no one should not set "
                            + "proxy_protocol); \(ValueRules.networksForm)")
                return nil
            }
            var result: [NetworkPrefix] = []
            var valid = true
            for (index, element) in array.enumerated() {
                guard let text = element.string else {
                    valid = false
                    reader.fail(site.element(index), "\(ValueRules.networkForm), found \(ValueRules.describe(element))")
                    continue
                }
                switch NetworkPrefix.parse(text) {
                case .network(let network):
                    result.append(network)
                case .malformed:
                    valid = false
                    reader.fail(site.element(index), "invalid network \"\(ValueRules.clip(text))\"; \(ValueRules.networkForm)")
                case .hostBits(let meant):
                    valid = false
                    reader.fail(site.element(index), "network \"\(ValueRules.clip(text))\" has bits set after its "
                                + "length; write \"\(meant)\"")
                }
            }
            return valid ? result : nil
        }
    }
}

extension Schema {
    /// `[[listener]]`: `proxy_protocol_from` is only meaningful with `proxy_protocol = true` (set without it, it is
    /// most likely a forgotten switch: an error rather than silence).
    static func checkProxyProtocol(_ table: TOMLTable, _ site: Site, _ reader: inout Reader, _ draft: ListenerDraft) -> Bool {
        guard table["proxy_protocol_from"]?.array != nil, !draft.listener.proxyProtocol else { return true }
        if table["proxy_protocol"] != nil, table["proxy_protocol"]?.bool != false { return true }   // invalid: reported
        reader.fail(site.child("proxy_protocol_from"), "is set but proxy_protocol is not; add proxy_protocol = true "
                    + "to accept PROXY protocol headers from these networks, or remove proxy_protocol_from")
        return false
    }
}

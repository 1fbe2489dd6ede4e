import TOMLKit

// The value rules of `[peer]`, `[group]` and `[[group.member]]`: ids, interface addresses, served paths and the
// bounded beacon interval. Each message names the form and gives an example, like the rest of the loader.

extension ValueRules {
    // MARK: Peer and member ids

    static let peerIdForm = #"expected 1 to 64 letters, digits, ".", "_" or "-", such as "peer-a""#

    /// 1...64 of `[A-Za-z0-9._-]`.
    static func isValidPeerId(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
    }

    // MARK: [peer] serves

    static let servesArrayForm = #"expected an array of paths such as ["/api/", "/banking/*"]"#
    static let servesPathForm =
        ##"expected a path prefix starting with "/" (no spaces, "?" or "#") such as "/api/", optionally ending in "*" such as "/banking/*" (no other "*")"##

    /// A route path prefix whose only `"*"`, if any, is its last character.
    static func isValidServedPath(_ text: String) -> Bool {
        guard isValidPathPrefix(text) else { return false }
        return !text.dropLast().contains("*")
    }

    // MARK: Interface addresses

    static let interfaceAddressForm =
        #"expected "ADDRESS/PREFIX dev DEVICE" such as "198.51.100.1/24 dev eth0" or "2001:db8::1/64 dev eth0""#
    static let interfaceAddressArrayForm = #"expected an array of addresses such as ["198.51.100.1/24 dev eth0"]"#

    /// Why a text is not an interface address.
    enum InterfaceAddressProblem: Error, Equatable {
        /// Not `ADDRESS/PREFIX dev DEVICE` at all.
        case malformed
        /// The address part is not a numeric IPv4 or IPv6 address.
        case badAddress(String)
        /// No `/PREFIX`.
        case missingPrefix
        /// A prefix length that is not a number within 0...32 (IPv4) or 0...128 (IPv6).
        case badPrefix(String, isIPv6: Bool)
        /// A device name that is not 1...15 of `[A-Za-z0-9._-@]`.
        case badDevice(String)

        /// The whole message for `text`.
        func message(_ text: String) -> String {
            let shown = "invalid interface address \"\(clip(text))\""
            switch self {
            case .malformed:
                return "\(shown); \(interfaceAddressForm)"
            case .badAddress(let address):
                return "\(shown): \"\(clip(address))\" is not a numeric IPv4 or IPv6 address; \(interfaceAddressForm)"
            case .missingPrefix:
                return "\(shown): the prefix length is missing; \(interfaceAddressForm)"
            case .badPrefix(let prefix, let isIPv6):
                let range = isIPv6 ? "0 and 128 for IPv6" : "0 and 32 for IPv4"
                return "\(shown): the prefix length must be between \(range), found \"\(clip(prefix))\"; "
                    + interfaceAddressForm
            case .badDevice(let device):
                return "\(shown): \"\(clip(device))\" is not a device name (1 to 15 letters, digits, \".\", \"_\", "
                    + "\"-\" or \"@\"); \(interfaceAddressForm)"
            }
        }
    }

    /// `"198.51.100.1/24 dev eth0"` (words separated by white space); IPv6 addresses are returned in RFC 5952 form.
    static func parseInterfaceAddress(_ text: String) -> Result<InterfaceAddress, InterfaceAddressProblem> {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count == 3, words[1] == "dev" else { return .failure(.malformed) }
        let cidr = words[0], device = String(words[2])
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return .failure(.malformed) }
        let host = parts[0]
        let address: String
        let isIPv6: Bool
        if SocketAddress.isIPv4(host) {
            (address, isIPv6) = (String(host), false)
        } else if host.contains(":"), let canonical = SocketAddress.canonicalIPv6(host) {
            (address, isIPv6) = (canonical, true)
        } else {
            return .failure(.badAddress(String(host)))
        }
        guard parts.count == 2 else { return .failure(.missingPrefix) }
        let prefixText = parts[1]
        guard (1...3).contains(prefixText.count), prefixText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let prefix = Int(prefixText), prefix <= (isIPv6 ? 128 : 32) else {
            return .failure(.badPrefix(String(prefixText), isIPv6: isIPv6))
        }
        guard isValidDeviceName(device) else { return .failure(.badDevice(device)) }
        return .success(InterfaceAddress(address: address, prefixLength: prefix, device: device, isIPv6: isIPv6))
    }

    /// 1...15 (IFNAMSIZ - 1) of `[A-Za-z0-9._-@]`.
    static func isValidDeviceName(_ text: String) -> Bool {
        (1...15).contains(text.utf8.count) && text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || "._-@".utf8.contains(byte)
        }
    }
}

extension Rule where Value == String {
    /// `[peer] id`, `[[group.member]] id`: `invalid <what> "x"; expected 1 to 64 letters, ...`.
    static func peerId(_ what: String) -> Rule {
        text(what, form: ValueRules.peerIdForm, valid: ValueRules.isValidPeerId)
    }
}

extension Rule where Value == [String] {
    /// `[peer] serves`: path prefixes, each optionally ending in `"*"`.
    static var servedPaths: Rule {
        strings(arrayForm: ValueRules.servesArrayForm, elementForm: ValueRules.servesPathForm, what: "path") {
            ValueRules.isValidServedPath($0) ? $0 : nil
        }
    }
}

extension Rule where Value == [InterfaceAddress] {
    /// `[peer] addresses`, `[[group.member]] takeover`: an array of `"ADDRESS/PREFIX dev DEVICE"` strings, each
    /// element checked (each error names its index).
    static var interfaceAddresses: Rule {
        Rule { value, site, reader in
            guard let array = value.array else {
                reader.fail(site, "\(ValueRules.interfaceAddressArrayForm), found \(ValueRules.describe(value))")
                return nil
            }
            var result: [InterfaceAddress] = []
            var valid = true
            for (index, element) in array.enumerated() {
                guard let text = element.string else {
                    valid = false
                    reader.fail(site.element(index),
                                "\(ValueRules.interfaceAddressForm), found \(ValueRules.describe(element))")
                    continue
                }
                switch ValueRules.parseInterfaceAddress(text) {
                case .success(let address):
                    result.append(address)
                case .failure(let problem):
                    valid = false
                    reader.fail(site.element(index), problem.message(text))
                }
            }
            return valid ? result : nil
        }
    }
}

extension Rule where Value == Duration {
    /// A duration within `range`: `must be between 50ms and 60s, found "..."` otherwise.
    static func duration(within range: ClosedRange<Duration>) -> Rule {
        Rule { value, site, reader in
            guard let duration = duration().check(value, site, &reader) else { return nil }
            guard range.contains(duration) else {
                let bounds = "\(ValueRules.formatDuration(range.lowerBound)) and \(ValueRules.formatDuration(range.upperBound))"
                reader.fail(site, "must be between \(bounds), found \"\(ValueRules.clip(value.string ?? ""))\"")
                return nil
            }
            return duration
        }
    }
}

extension Rule where Value == SocketAddress {
    /// A numeric address whose port is not 0: `invalid address "x": <portRule>; <form>` for port 0.
    static func address(example: String, portRule: String) -> Rule {
        address(example: example, allowPortZero: true).then { address, site, reader in
            guard address.port == 0 else { return address }
            reader.fail(site, "invalid address \"\(address)\": \(portRule); \(ValueRules.addressForm(example: example))")
            return nil
        }
    }
}

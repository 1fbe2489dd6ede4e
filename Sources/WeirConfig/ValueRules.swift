import Foundation
import TOMLKit

/// Pure checks and conversions of single values, plus the wording shared by error messages.
enum ValueRules {
    // MARK: Durations

    static let durationForm =
        #"expected a duration such as "10s" or "250ms" (a positive whole number followed by ms, s, m or h)"#

    /// For the keys where zero turns a feature off (e.g. `slow_start`).
    static let durationFormAllowingZero =
        #"expected a duration such as "10s" or "250ms" (a whole number followed by ms, s, m or h), or "0s" for off"#

    /// `"250ms"`, `"10s"`, `"5m"`, `"1h"`: a positive decimal integer and a unit, nothing else
    /// (zero too when `allowZero`, e.g. `"0s"`).
    static func parseDuration(_ text: String, allowZero: Bool = false) -> Duration? {
        let digits = text.prefix { $0 >= "0" && $0 <= "9" }
        let unit = text.dropFirst(digits.count)
        guard !digits.isEmpty, digits.count <= 12, let value = Int64(digits), value > 0 || allowZero else { return nil }
        switch unit {
        case "ms": return .milliseconds(value)
        case "s": return .seconds(value)
        case "m": return .seconds(value * 60)
        case "h": return .seconds(value * 3600)
        default: return nil
        }
    }

    /// `"250ms"`, `"2s"`, `"5m"`, `"1h"`: the largest unit that expresses `duration` exactly (for messages).
    static func formatDuration(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds % 1000 != 0 { return "\(milliseconds)ms" }
        if seconds != 0 && seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds != 0 && seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    // MARK: Load levels

    static let levelForm = #"expected a number between 0.0 and 1.0 such as 0.5, or a percentage such as "50%""#

    /// A load level from a TOML float, the integers 0 and 1, or a percentage string such as `"50%"` / `"12.5%"`.
    enum Level: Equatable {
        case value(Double)
        /// The right type but outside 0...1 (as written, for the message).
        case outOfRange(String)
        /// Not a number or percentage at all.
        case malformed
    }

    static func parseLevel(_ value: TOMLValueConvertible) -> Level {
        if value.type == .double, let number = value.double {
            return (0.0...1.0).contains(number) ? .value(number) : .outOfRange(String(number))
        }
        if value.type == .int, let number = value.int {
            return (0...1).contains(number) ? .value(Double(number)) : .outOfRange(String(number))
        }
        guard let text = value.string else { return .malformed }
        guard text.hasSuffix("%") else { return .malformed }
        let number = text.dropLast()
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts.allSatisfy({ part in
            !part.isEmpty && part.count <= 9 && part.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        }), let percent = Double(number) else { return .malformed }
        return percent <= 100 ? .value(percent / 100) : .outOfRange("\"\(clip(text))\"")
    }

    // MARK: hash_key

    static let hashKeyForm =
        #"expected "source", "path", "header:NAME" such as "header:X-User", or "cookie:NAME" such as "cookie:session""#

    enum HashKeyProblem: Error, Equatable {
        /// Neither a known word nor a `header:` / `cookie:` form.
        case unknown
        /// `header:` or `cookie:` followed by a name that is not an HTTP token (possibly empty).
        case badName(kind: String, name: String)
    }

    static func parseHashKey(_ text: String) -> Result<HashKey, HashKeyProblem> {
        switch text {
        case "source": return .success(.source)
        case "path": return .success(.path)
        default: break
        }
        for kind in ["header", "cookie"] where text.hasPrefix(kind + ":") {
            let name = String(text.dropFirst(kind.count + 1))
            guard isToken(name) else { return .failure(.badName(kind: kind, name: name)) }
            return .success(kind == "header" ? .header(name.lowercased()) : .cookie(name))
        }
        return .failure(.unknown)
    }

    /// An HTTP token (RFC 9110 tchar+): method names, header names, cookie names.
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    // MARK: [pool.health]

    static let methodForm = #"expected an HTTP method such as "GET" or "HEAD""#
    static let healthPathForm = ##"expected a request path starting with "/" (no spaces or "#") such as "/health""##
    static let healthHostForm = #"expected a Host header value such as "example.com" or "example.com:8080""#
    static let statusForm = #"expected a status such as 200 or a range such as "200-399""#
    static let statusRange = 100...599

    /// A request target for a health check: starts with "/", printable ASCII without spaces or "#" (a query is fine).
    static func isValidRequestPath(_ text: String) -> Bool {
        text.hasPrefix("/") && text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7f && $0 != "#" }
    }

    /// A Host header value: printable ASCII without spaces, "/", "?", "#" or "@".
    static func isValidHostHeader(_ text: String) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy { scalar in
            scalar.value > 0x20 && scalar.value < 0x7f && !"/?#@".unicodeScalars.contains(scalar)
        }
    }

    enum StatusProblem: Error, Equatable {
        case malformed
        case outOfRange
        case reversed
    }

    /// `"200"` or `"200-399"`, each status within `statusRange`, low <= high.
    static func parseStatusRange(_ text: String) -> Result<ClosedRange<Int>, StatusProblem> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ part in
            (1...3).contains(part.count) && part.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        }), let low = Int(parts[0]), let high = Int(parts[parts.count - 1]) else { return .failure(.malformed) }
        guard statusRange.contains(low), statusRange.contains(high) else { return .failure(.outOfRange) }
        guard low <= high else { return .failure(.reversed) }
        return .success(low...high)
    }

    // MARK: Route host and path

    static let hostForm =
        #"expected an exact host name such as "example.com" or a wildcard such as "*.example.com" (no scheme, no port)"#

    /// Lower-cased host if `text` is a DNS-style name (letters, digits, "-", "_", dot-separated labels),
    /// optionally preceded by "*." for a wildcard; nil otherwise.
    static func normalizedHost(_ text: String) -> String? {
        let lower = text.lowercased()
        let name = lower.hasPrefix("*.") ? String(lower.dropFirst(2)) : lower
        guard !name.isEmpty, name.utf8.count <= 253 else { return nil }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            guard !label.isEmpty, label.utf8.count <= 63, label.first != "-", label.last != "-",
                  label.utf8.allSatisfy({ isLowerAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") })
            else { return nil }
        }
        return lower
    }

    static let pathForm =
        ##"expected a path prefix starting with "/" (no spaces, "?" or "#") such as "/" or "/api/", or a pattern with "*" such as "/users/*/banking""##

    static func isValidPathPrefix(_ text: String) -> Bool {
        guard text.hasPrefix("/") else { return false }
        return text.unicodeScalars.allSatisfy { scalar in
            scalar.value > 0x20 && scalar.value != 0x7f && scalar != "?" && scalar != "#"
        }
    }

    // MARK: Sticky rules

    static let stickyPathForm =
        ##"expected a path starting with "/" and ending in "/*" (no other "*", no spaces, "?" or "#"), such as "/banking/*""##

    /// `[[route.sticky]] path`: a valid path prefix ending in "/*" whose only "*" is the last character.
    static func isValidStickyPath(_ text: String) -> Bool {
        isValidPathPrefix(text) && text.hasSuffix("/*") && text.filter({ $0 == "*" }).count == 1
    }

    static let completeArrayForm =
        #"expected an array of paths such as ["/banking/logout", "/banking/receipt/*"]"#
    static let completePathForm =
        ##"expected a path starting with "/" (no spaces, "?" or "#") such as "/banking/logout", or a pattern with "*" such as "/banking/receipt/*""##

    static let cookieNameForm =
        #"expected a cookie name such as "weir_pin" (letters, digits and !#$%&'*+-.^_`|~; no spaces, "=" or ";")"#

    // MARK: [sticky] secret

    static let secretCommand = "openssl rand -hex 32"

    /// Why `secret_file` cannot provide a secret; `message` is the whole error message.
    enum SecretFileProblem: Error, Equatable {
        case missing(String)
        case directory(String)
        case unreadable(String)
        case notUTF8(String)
        case empty(String)
        case short(String, bytes: Int)

        var message: String {
            switch self {
            case .missing(let path):
                return "cannot read secret file \"\(path)\": it does not exist; create it with: "
                    + "\(secretCommand) > \(shellQuoted(path))"
            case .directory(let path):
                return "cannot read secret file \"\(path)\": it is a directory; name a file holding the secret"
            case .unreadable(let path):
                return "cannot read secret file \"\(path)\" (check its permissions)"
            case .notUTF8(let path):
                return "secret file \"\(path)\" is not valid UTF-8 text; write a new secret with: "
                    + "\(secretCommand) > \(shellQuoted(path))"
            case .empty(let path):
                return "secret file \"\(path)\" is empty; write a secret into it with: "
                    + "\(secretCommand) > \(shellQuoted(path))"
            case .short(let path, let bytes):
                return "secret file \"\(path)\" holds \(bytes) bytes (after trimming whitespace); the secret must "
                    + "be at least \(StickySettings.minimumSecretLength) bytes; write a new one with: "
                    + "\(secretCommand) > \(shellQuoted(path))"
            }
        }
    }

    /// The secret in the file at `path` (relative paths: to the working directory), without leading and trailing
    /// whitespace and newlines; at least `StickySettings.minimumSecretLength` bytes.
    static func readSecretFile(_ path: String) -> Result<String, SecretFileProblem> {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: path, isDirectory: &isDirectory) else { return .failure(.missing(path)) }
        guard !isDirectory.boolValue else { return .failure(.directory(path)) }
        guard let data = fileManager.contents(atPath: path) else { return .failure(.unreadable(path)) }
        guard let text = String(data: data, encoding: .utf8) else { return .failure(.notUTF8(path)) }
        let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if secret.isEmpty { return .failure(.empty(path)) }
        guard secret.utf8.count >= StickySettings.minimumSecretLength else {
            return .failure(.short(path, bytes: secret.utf8.count))
        }
        return .success(secret)
    }

    /// `path` as a POSIX shell word: unchanged when it holds only safe characters, else in single quotes.
    static func shellQuoted(_ path: String) -> String {
        let safe = path.unicodeScalars.allSatisfy { scalar in
            (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
                || "/._-+,:@%".unicodeScalars.contains(scalar)
        }
        return safe && !path.isEmpty ? path : "'" + path.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    // MARK: [global] state_dir, [discovery]

    static let stateDirectoryForm =
        #"expected a directory such as "/var/lib/weir" (a relative path is relative to the working directory)"#

    static func discoveryPathForm(example: String) -> String {
        ##"expected a path starting with "/" (no spaces, "?", "#" or "*") such as "\##(example)", or "off" to turn the endpoint off"##
    }

    // MARK: TLS files, hsts, server_name

    /// What a TLS key names (`cert`, `key`, `ca_file`, `client_cert`, `client_key`, `ocsp`): the words of its
    /// messages, an example path, and whether the file must be PEM text.
    enum TLSFile: Equatable {
        case certificate
        case privateKey
        case caBundle
        case clientCertificate
        case clientKey
        case ocspResponse

        /// `"certificate file"`, `"key file"`, ...: what the messages call the file.
        var noun: String {
            switch self {
            case .certificate: return "certificate file"
            case .privateKey: return "key file"
            case .caBundle: return "CA file"
            case .clientCertificate: return "client certificate file"
            case .clientKey: return "client key file"
            case .ocspResponse: return "OCSP response file"
            }
        }

        /// An example path, for "e.g. cert = ..." hints.
        var example: String {
            switch self {
            case .certificate: return "/etc/weir/tls/example.com.pem"
            case .privateKey: return "/etc/weir/tls/example.com.key"
            case .caBundle: return "/etc/weir/tls/backend-ca.pem"
            case .clientCertificate: return "/etc/weir/tls/client.pem"
            case .clientKey: return "/etc/weir/tls/client.key"
            case .ocspResponse: return "/etc/weir/tls/example.com.ocsp"
            }
        }

        /// Whether the file must be PEM text (every kind but the DER OCSP response).
        var isPEM: Bool { self != .ocspResponse }

        /// What a PEM file of this kind holds and how to convert a DER one (for "is not PEM").
        var pemHint: String {
            let certificate = "convert a DER certificate with: openssl x509 -inform der -in cert.der -out cert.pem"
            let key = "convert a DER key with: openssl pkey -inform der -in key.der -out key.pem"
            switch self {
            case .certificate:
                return "expected the certificate and its chain in PEM form (such as certbot's fullchain.pem); \(certificate)"
            case .privateKey:
                return "expected a private key in PEM form (such as certbot's privkey.pem); \(key)"
            case .caBundle:
                return "expected one or more CA certificates in PEM form; \(certificate)"
            case .clientCertificate:
                return "expected the client certificate and its chain in PEM form; \(certificate)"
            case .clientKey:
                return "expected a private key in PEM form; \(key)"
            case .ocspResponse:
                return ""
            }
        }
    }

    /// Why a TLS file cannot be used; `message(_:)` is the whole error message.
    enum TLSFileProblem: Error, Equatable {
        case missing(String)
        case directory(String)
        case unreadable(String)
        case notPEM(String)

        func message(_ kind: TLSFile) -> String {
            switch self {
            case .missing(let path):
                let relative = path.hasPrefix("/") ? ""
                    : " (a relative path is relative to the working directory, \(FileManager.default.currentDirectoryPath))"
                return "cannot read \(kind.noun) \"\(path)\": it does not exist\(relative)"
            case .directory(let path):
                let what = kind.isPEM ? "a PEM file" : "a file holding a DER OCSP response"
                return "cannot read \(kind.noun) \"\(path)\": it is a directory; name \(what)"
            case .unreadable(let path):
                return "cannot read \(kind.noun) \"\(path)\" (check its permissions)"
            case .notPEM(let path):
                return "\(kind.noun) \"\(path)\" is not PEM (it has no \"-----BEGIN \" line); \(kind.pemHint)"
            }
        }
    }

    /// nil when the file at `path` (relative paths: to the working directory) exists, is readable and, when `pem`,
    /// contains a `"-----BEGIN "` line. The contents are not parsed: the gateway validates them when it starts.
    static func checkTLSFile(_ path: String, pem: Bool) -> TLSFileProblem? {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: path, isDirectory: &isDirectory) else { return .missing(path) }
        guard !isDirectory.boolValue else { return .directory(path) }
        guard let data = fileManager.contents(atPath: path) else { return .unreadable(path) }
        if pem && data.range(of: Data("-----BEGIN ".utf8)) == nil { return .notPEM(path) }
        return nil
    }

    static let hstsForm =
        #"expected a Strict-Transport-Security value with a max-age, such as "max-age=63072000" or "max-age=63072000; includeSubDomains; preload""#

    /// A `Strict-Transport-Security` value (RFC 6797): printable ASCII, `;`-separated directives whose names are
    /// tokens, exactly one of them `max-age=SECONDS` (digits, optionally quoted).
    static func isValidHSTS(_ text: String) -> Bool {
        guard text.unicodeScalars.allSatisfy({ $0 == "\t" || ($0.value >= 0x20 && $0.value < 0x7f) }) else { return false }
        var maxAges = 0
        for directive in text.split(separator: ";", omittingEmptySubsequences: false) {
            let trimmed = directive.trimmingCharacters(in: .whitespaces)
            let parts = trimmed.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            guard isToken(name) else { return false }
            guard name.lowercased() == "max-age" else { continue }
            guard parts.count == 2 else { return false }
            var value = Substring(parts[1].trimmingCharacters(in: .whitespaces))
            if value.count >= 2 && value.hasPrefix("\"") && value.hasSuffix("\"") { value = value.dropFirst().dropLast() }
            guard !value.isEmpty, value.count <= 12, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
            maxAges += 1
        }
        return maxAges == 1
    }

    static let serverNameForm =
        #"expected a host name such as "api.internal.example" (no scheme, port or wildcard), or an IP address such as "192.0.2.5""#

    /// `[pool.tls] server_name`: a DNS-style host name (returned in lower case, no wildcard) or a numeric IPv4 or
    /// IPv6 address (without brackets; IPv6 returned in RFC 5952 form); nil otherwise.
    static func normalizedServerName(_ text: String) -> String? {
        if SocketAddress.isIPv4(text) { return text }
        if text.contains(":") { return SocketAddress.canonicalIPv6(text) }
        if text.allSatisfy({ $0 == "." || ("0"..."9").contains($0) }) { return nil }
        guard !text.hasPrefix("*"), let host = normalizedHost(text) else { return nil }
        return host
    }

    // MARK: rewrite_body_types

    static let contentTypeArrayForm = #"expected an array of content types such as ["text/html", "application/wsdl+xml"]"#
    static let contentTypeForm =
        #"expected a content type such as "text/xml" or "application/wsdl+xml" (type/subtype, no parameters or wildcards)"#

    /// `type/subtype`, both HTTP tokens without "*" (RFC 9110 media type, no parameters).
    static func isValidContentType(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { isToken(String($0)) && !$0.contains("*") }
    }

    // MARK: public_url

    static let urlForm = #"expected an http:// or https:// URL with no path beyond "/", such as "http://127.0.0.1:9001""#

    static func isValidPublicURL(_ text: String) -> Bool {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            rest = text.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            rest = text.dropFirst(8)
        } else {
            return false
        }
        var authority = rest
        if let slash = rest.firstIndex(of: "/") {
            guard rest[slash...] == "/" else { return false }
            authority = rest[..<slash]
        }
        guard !authority.isEmpty else { return false }
        var hostPart: Substring
        var portPart: Substring? = nil
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return false }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { return false }
                portPart = after.dropFirst()
            }
            guard SocketAddress.canonicalIPv6(hostPart) != nil else { return false }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                hostPart = authority[..<colon]
                portPart = authority[authority.index(after: colon)...]
            } else {
                hostPart = authority
            }
            guard !hostPart.isEmpty, normalizedHost(String(hostPart)) != nil, !hostPart.hasPrefix("*") else { return false }
        }
        if let port = portPart {
            guard !port.isEmpty, port.count <= 5, port.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let value = Int(port), (1...65535).contains(value) else { return false }
        }
        return true
    }

    // MARK: Addresses

    static func addressForm(example: String) -> String {
        #"expected a numeric IP address and port such as "\#(example)" or "[::1]:\#(example.split(separator: ":").last ?? "80")""#
    }

    static func addressProblem(_ text: String, _ problem: SocketAddress.Problem, example: String) -> String {
        let form = addressForm(example: example)
        let reason: String
        switch problem {
        case .empty: return "must not be empty; " + form
        case .missingPort: reason = "missing port"
        case .badPort(let port): reason = "port \"\(port)\" is not a number"
        case .portOutOfRange(let port): reason = "port \(port) is out of range (0-65535)"
        case .hostName(let host): reason = "\"\(host)\" is a host name, not a numeric IP address (host names are not resolved)"
        case .badIPv4(let host): reason = "\"\(host)\" is not a valid IPv4 address"
        case .badIPv6(let host): reason = "\"\(host)\" is not a valid IPv6 address"
        case .ipv6WithoutBrackets: reason = "an IPv6 address must be in brackets"
        }
        return "invalid address \"\(text)\": \(reason); \(form)"
    }

    // MARK: Describing values

    /// "a string (\"4\")", "an integer (4)", "a table", ...: what an error message says was found.
    static func describe(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .string: return "a string (\"\(clip(value.string ?? ""))\")"
        case .int: return "an integer (\(value.int.map(String.init) ?? "?"))"
        case .double: return "a floating-point number (\(value.double.map { String($0) } ?? "?"))"
        case .bool: return "a boolean (\(value.bool.map { String($0) } ?? "?"))"
        case .table: return "a table"
        case .array: return "an array"
        case .date: return "a date"
        case .time: return "a time"
        case .dateTime: return "a date-time"
        }
    }

    static func clip(_ text: String) -> String {
        text.count > 60 ? String(text.prefix(57)) + "..." : text
    }

    static func quotedList(_ names: [String]) -> String {
        names.map { "\"\($0)\"" }.joined(separator: ", ")
    }

    // MARK: Suggestions

    /// The single best candidate within edit distance 2 (ignoring case, "_" and "-" differences), or nil
    /// when there is none or two candidates tie.
    static func suggestion(for word: String, among candidates: [String]) -> String? {
        func folded(_ text: String) -> String { text.lowercased().filter { $0 != "_" && $0 != "-" } }
        let foldedWord = folded(word)
        var best: (candidate: String, distance: Int)? = nil
        var tie = false
        for candidate in candidates where candidate != word {
            let distance = folded(candidate) == foldedWord ? 0 : editDistance(word.lowercased(), candidate.lowercased())
            guard distance <= 2 else { continue }
            if let current = best {
                if distance < current.distance {
                    best = (candidate, distance)
                    tie = false
                } else if distance == current.distance {
                    tie = true
                }
            } else {
                best = (candidate, distance)
            }
        }
        return tie ? nil : best?.candidate
    }

    /// Levenshtein distance over characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7a)
    }
}

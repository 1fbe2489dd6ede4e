import Foundation
import TOMLKit

/// Accumulates the parsed files into one configuration, collecting every error on the way.
struct Merger {
    // MARK: Known tables and keys

    static let globalKeys = ["workers", "max_connections", "drain_timeout", "access_log", "state_dir"]
    static let timeoutKeys = ["client_header", "client_idle", "upstream_connect", "upstream_response",
                              "upstream_idle", "tunnel_idle"]
    static let limitKeys = ["max_request_line", "max_header_bytes", "max_header_count",
                            "upstream_idle_per_server", "buffer_bytes", "redirect_body_bytes"]
    static let listenerKeys = ["name", "address", "max_connections", "mode", "https_redirect", "tls"]
    static let listenerTLSKeys = ["cert", "key", "sni", "profile", "ocsp", "hsts", "ticket_rotation",
                                  "handshake_timeout"]
    static let sniKeys = ["cert", "key"]
    static let adminKeys = ["address"]
    static let stickySettingsKeys = ["secret", "secret_file", "source_table_size"]
    static let discoveryKeys = ["servers_path", "assign_path"]
    static let poolKeys = ["name", "policy", "first_level", "second_level", "hash_key", "retries", "slow_start",
                           "max_queue", "queue_timeout", "passive_failures", "rewrite_body_types", "health", "tls",
                           "server"]
    static let poolTLSKeys = ["enabled", "ca_file", "verify", "server_name", "client_cert", "client_key"]
    static let healthKeys = ["type", "interval", "timeout", "rise", "fall", "method", "path", "host",
                             "expect_status", "expect_body"]
    static let serverKeys = ["id", "address", "weight", "capacity", "public_url", "group", "max_conns"]
    static let routeKeys = ["name", "pool", "host", "path", "listener", "spill", "mode", "redirect_status", "sticky"]
    static let stickyRuleKeys = ["path", "complete", "idle_timeout", "by", "cookie"]

    /// Top-level names in the order they are processed, with the header an operator writes for each.
    static let tables: [(name: String, header: String)] = [
        ("global", "[global]"), ("timeouts", "[timeouts]"), ("limits", "[limits]"), ("admin", "[admin]"),
        ("sticky", "[sticky]"), ("discovery", "[discovery]"),
        ("listener", "[[listener]]"), ("pool", "[[pool]]"), ("route", "[[route]]"),
    ]
    /// The single tables whose keys may each be set in only one file.
    static let settingsTables: Set<String> = ["global", "timeouts", "limits", "admin", "sticky", "discovery"]
    static var tableHeaders: String { tables.map(\.header).joined(separator: ", ") }

    /// Key -> header of the settings table it belongs to, for "belongs in [timeouts]" hints.
    static let settingsHome: [String: String] = {
        var home: [String: String] = [:]
        for key in globalKeys { home[key] = "[global]" }
        for key in timeoutKeys { home[key] = "[timeouts]" }
        for key in limitKeys { home[key] = "[limits]" }
        for key in stickySettingsKeys { home[key] = "[sticky]" }
        for key in discoveryKeys { home[key] = "[discovery]" }
        return home
    }()

    static let maxConnectionsRange = 1...10_000_000

    // MARK: State

    let scope: String
    var errors: [ConfigError] = []
    /// A file could not be read or parsed: cross-file checks would only produce noise.
    var incomplete = false
    var sourceFiles: [String] = []

    var global = GlobalSettings()
    var timeouts = Timeouts()
    var limits = Limits()
    var admin = AdminSettings()
    var discovery = DiscoverySettings()
    /// `[discovery]` keys written in some file (valid or not) -> "file: key" (then their default is not in use).
    var discoveryLocations: [String: String] = [:]
    /// A `[discovery]` key was written with an invalid value (then the paths are not compared).
    var discoveryInvalid = false
    var stickySettings = StickySettings()
    /// `[sticky] secret` as written (valid), and where.
    var inlineSecret: String? = nil
    var inlineSecretLocation: String? = nil
    /// The trimmed contents of `[sticky] secret_file` (valid), and where the key was written (valid or not).
    var fileSecret: String? = nil
    var secretFileLocation: String? = nil
    /// "file: admin.address" when `[admin] address` was set (and valid).
    var adminLocation: String? = nil
    /// `[admin] address` was written in some file, valid or not (then the default is not in use).
    var adminAddressWritten = false
    /// "global.workers" -> file that set it.
    var settingOwners: [String: String] = [:]

    var listeners: [(listener: Listener, explicitMaxConnections: Int?)] = []
    var pools: [Pool] = []
    var routes: [Route] = []

    /// Declared names -> "file: key" of the first declaration (recorded even when the rest of the
    /// declaration is invalid, so one mistake does not also show up as a dangling reference).
    var listenerNames: [String: String] = [:]
    var listenerNameOrder: [String] = []
    var listenerAddresses: [SocketAddress: (name: String?, location: String)] = [:]
    var poolNames: [String: String] = [:]
    var poolNameOrder: [String] = []
    var serverIDs: [String: String] = [:]
    var routeNames: [String: String] = [:]
    var listenerTablesSeen = 0
    var routeTablesSeen = 0

    struct RouteReference {
        var file: String
        var path: String
        var pool: String?
        var listener: String?
        var spill: String?
    }
    var routeReferences: [RouteReference] = []

    init(scope: String) {
        self.scope = scope
    }

    var configuration: WeirConfiguration {
        WeirConfiguration(
            global: global, timeouts: timeouts, limits: limits,
            listeners: listeners.map { entry in
                var listener = entry.listener
                listener.maxConnections = entry.explicitMaxConnections ?? global.maxConnections
                return listener
            },
            pools: pools, routes: routes, sourceFiles: sourceFiles, admin: admin,
            sticky: {
                var sticky = stickySettings
                sticky.secret = inlineSecret ?? fileSecret
                return sticky
            }(),
            discovery: discovery)
    }

    mutating func fail(_ file: String, _ key: String, _ message: String) {
        // An empty key (TOML allows `"" = 1`) is shown quoted, so the line still reads FILE: KEY: MESSAGE.
        errors.append(ConfigError(file: file, key: key.isEmpty ? "\"\"" : Self.oneLine(key), message: Self.oneLine(message)))
    }

    /// `text` with control characters other than tab escaped (`\n`, `\r`, `\u{1B}`): keys and messages quote what
    /// the operator wrote (TOML strings may hold any of them) and toml++'s own messages may quote a line break, but
    /// `weir check` prints one problem per line. Found by fuzzing (Fuzz/Targets/Config.swift).
    static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) else { return text }
        var out = ""
        for c in text.unicodeScalars {
            switch c {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out.unicodeScalars.append(c)
            case _ where c.value < 0x20 || c.value == 0x7F: out += "\\u{" + String(c.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    // MARK: One file

    mutating func process(file: String, table: TOMLTable) {
        for (name, header) in Self.tables {
            guard let value = table[name] else { continue }
            switch name {
            case _ where Self.settingsTables.contains(name):
                guard let section = value.table else {
                    let hint = name == "sticky" && value.type == .array
                        ? "; to pin a route's path to one server, write [[route.sticky]] after the [[route]]" : ""
                    fail(file, name, "expected a table (\(header)), found \(ValueRules.describe(value))\(hint)")
                    continue
                }
                processSettings(name, section, file: file)
            default:
                guard let elements = arrayOfTables(value, file: file, key: name, header: header) else { continue }
                for (index, element) in elements {
                    switch name {
                    case "listener": processListener(element, file: file, path: "listener[\(index)]")
                    case "pool": processPool(element, file: file, path: "pool[\(index)]")
                    default: processRoute(element, file: file, path: "route[\(index)]")
                    }
                }
            }
        }
        let known = Set(Self.tables.map(\.name))
        for key in table.keys.sorted() where !known.contains(key) {
            guard let value = table[key] else { continue }
            if value.type == .table || value.type == .array {
                if let match = ValueRules.suggestion(for: key, among: Self.tables.map(\.name)),
                   let header = Self.tables.first(where: { $0.name == match })?.header {
                    fail(file, key, "unknown table (did you mean \(header)?)")
                } else {
                    fail(file, key, "unknown table; known tables: \(Self.tableHeaders)")
                }
            } else if let home = Self.settingsHome[key] {
                fail(file, key, "unknown top-level key; \(key) belongs in \(home)")
            } else {
                fail(file, key, "unknown top-level key; keys belong inside one of \(Self.tableHeaders)")
            }
        }
    }

    /// The tables of an array of tables, with their index; records an error and returns nil for anything else.
    mutating func arrayOfTables(_ value: TOMLValueConvertible, file: String, key: String,
                                header: String) -> [(Int, TOMLTable)]? {
        guard let array = value.array else {
            if key == "pool", let table = value.table, table["server"] != nil {
                fail(file, "pool.server", "[[pool.server]] must follow a [[pool]] in the same file")
            } else if key == "pool", let table = value.table, table["health"] != nil {
                fail(file, "pool.health", "[pool.health] must follow a [[pool]] in the same file")
            } else if key == "pool", let table = value.table, table["tls"] != nil {
                fail(file, "pool.tls", "[pool.tls] must follow a [[pool]] in the same file")
            } else if key == "route", let table = value.table, table["sticky"] != nil {
                fail(file, "route.sticky", "[[route.sticky]] must follow a [[route]] in the same file")
            } else if key == "listener", let table = value.table, let tls = table["tls"]?.table {
                if tls.keys == ["sni"] {
                    fail(file, "listener.tls.sni",
                         "[[listener.tls.sni]] must follow a [[listener]] and its [listener.tls] in the same file")
                } else {
                    fail(file, "listener.tls", "[listener.tls] must follow a [[listener]] in the same file")
                }
            } else if value.type == .table {
                fail(file, key, "expected an array of tables (\(header)), found a table; write \(header), not \(header.dropFirst().dropLast())")
            } else {
                fail(file, key, "expected an array of tables (\(header)), found \(ValueRules.describe(value))")
            }
            return nil
        }
        var result: [(Int, TOMLTable)] = []
        for (index, element) in array.enumerated() {
            guard let table = element.table else {
                fail(file, "\(key)[\(index)]", "expected a table (\(header)), found \(ValueRules.describe(element))")
                continue
            }
            result.append((index, table))
        }
        return result
    }

    mutating func checkUnknownKeys(_ table: TOMLTable, known: [String], file: String, path: String,
                                   header: String, elsewhere: [String: String] = [:]) {
        for key in table.keys.sorted() where !known.contains(key) {
            let message: String
            if let match = ValueRules.suggestion(for: key, among: known) {
                message = "unknown key (did you mean \"\(match)\"?)"
            } else if let home = elsewhere[key] {
                message = "unknown key; \(key) belongs in \(home), not \(header)"
            } else {
                message = "unknown key; known keys in \(header): \(known.joined(separator: ", "))"
            }
            fail(file, "\(path).\(key)", message)
        }
    }

    // MARK: [global], [timeouts], [limits]

    /// The value of a settings key, or nil when absent or already set by another file (an error).
    mutating func claim(_ section: String, _ key: String, in table: TOMLTable, file: String) -> TOMLValueConvertible? {
        guard let value = table[key] else { return nil }
        let fullKey = "\(section).\(key)"
        if let owner = settingOwners[fullKey] {
            fail(file, fullKey, "already set in \(owner); each [\(section)] key may be set in only one file")
            return nil
        }
        settingOwners[fullKey] = file
        return value
    }

    mutating func processSettings(_ section: String, _ table: TOMLTable, file: String) {
        switch section {
        case "global":
            checkUnknownKeys(table, known: Self.globalKeys, file: file, path: "global", header: "[global]",
                             elsewhere: Self.settingsHome)
            if let value = claim(section, "workers", in: table, file: file),
               let number = integer(value, file: file, key: "global.workers", range: 0...1024) {
                global.workers = number
            }
            if let value = claim(section, "max_connections", in: table, file: file),
               let number = integer(value, file: file, key: "global.max_connections", range: Self.maxConnectionsRange) {
                global.maxConnections = number
            }
            if let value = claim(section, "drain_timeout", in: table, file: file),
               let duration = duration(value, file: file, key: "global.drain_timeout") {
                global.drainTimeout = duration
            }
            if let value = claim(section, "access_log", in: table, file: file),
               let log = accessLog(value, file: file, key: "global.access_log") {
                global.accessLog = log
            }
            if let value = claim(section, "state_dir", in: table, file: file),
               let text = string(value, file: file, key: "global.state_dir") {
                if text.allSatisfy(\.isWhitespace) {
                    fail(file, "global.state_dir", "must not be empty; \(ValueRules.stateDirectoryForm)")
                } else {
                    global.stateDirectory = text
                }
            }
        case "admin":
            checkUnknownKeys(table, known: Self.adminKeys, file: file, path: "admin", header: "[admin]",
                             elsewhere: Self.settingsHome)
            if let value = claim(section, "address", in: table, file: file) {
                adminAddressWritten = true
                if let address = adminAddress(value, file: file, key: "admin.address") {
                    admin.address = address
                    adminLocation = "\(file): admin.address"
                }
            }
        case "sticky":
            checkUnknownKeys(table, known: Self.stickySettingsKeys, file: file, path: "sticky", header: "[sticky]",
                             elsewhere: Self.settingsHome.merging(
                                Self.stickyRuleKeys.map { ($0, "[[route.sticky]]") }) { first, _ in first })
            if let value = claim(section, "secret", in: table, file: file),
               let text = string(value, file: file, key: "sticky.secret") {
                inlineSecretLocation = "\(file): sticky.secret"
                if text.count < StickySettings.minimumSecretLength {
                    fail(file, "sticky.secret", "must be at least \(StickySettings.minimumSecretLength) characters, "
                         + "found \(text.count); generate one with: \(ValueRules.secretCommand) (or leave secret out: "
                         + "one is then generated at first start and kept in [global] state_dir)")
                } else {
                    inlineSecret = text
                }
            }
            if let value = claim(section, "secret_file", in: table, file: file),
               let path = string(value, file: file, key: "sticky.secret_file") {
                secretFileLocation = "\(file): sticky.secret_file"
                if path.isEmpty {
                    fail(file, "sticky.secret_file", #"must not be empty, e.g. secret_file = "/etc/weir/sticky.secret""#)
                } else {
                    switch ValueRules.readSecretFile(path) {
                    case .success(let secret):
                        fileSecret = secret
                        stickySettings.secretFile = path
                    case .failure(let problem):
                        fail(file, "sticky.secret_file", problem.message)
                    }
                }
            }
            if let value = claim(section, "source_table_size", in: table, file: file),
               let number = integer(value, file: file, key: "sticky.source_table_size", range: 1...10_000_000) {
                stickySettings.sourceTableSize = number
            }
        case "discovery":
            checkUnknownKeys(table, known: Self.discoveryKeys, file: file, path: "discovery", header: "[discovery]",
                             elsewhere: Self.settingsHome)
            let fields: [(String, WritableKeyPath<DiscoverySettings, String?>, String)] = [
                ("servers_path", \.serversPath, DiscoverySettings.defaultServersPath),
                ("assign_path", \.assignPath, DiscoverySettings.defaultAssignPath),
            ]
            for (key, keyPath, example) in fields {
                guard let value = claim(section, key, in: table, file: file) else { continue }
                discoveryLocations[key] = "\(file): discovery.\(key)"
                if let path = discoveryPath(value, file: file, key: "discovery.\(key)", example: example) {
                    discovery[keyPath: keyPath] = path
                } else {
                    discoveryInvalid = true
                }
            }
        case "timeouts":
            checkUnknownKeys(table, known: Self.timeoutKeys, file: file, path: "timeouts", header: "[timeouts]",
                             elsewhere: Self.settingsHome)
            let fields: [(String, WritableKeyPath<Timeouts, Duration>)] = [
                ("client_header", \.clientHeader), ("client_idle", \.clientIdle),
                ("upstream_connect", \.upstreamConnect), ("upstream_response", \.upstreamResponse),
                ("upstream_idle", \.upstreamIdle), ("tunnel_idle", \.tunnelIdle),
            ]
            for (key, keyPath) in fields {
                if let value = claim(section, key, in: table, file: file),
                   let duration = duration(value, file: file, key: "timeouts.\(key)") {
                    timeouts[keyPath: keyPath] = duration
                }
            }
        default:
            checkUnknownKeys(table, known: Self.limitKeys, file: file, path: "limits", header: "[limits]",
                             elsewhere: Self.settingsHome)
            let fields: [(String, WritableKeyPath<Limits, Int>, ClosedRange<Int>)] = [
                ("max_request_line", \.maxRequestLine, 256...1_048_576),
                ("max_header_bytes", \.maxHeaderBytes, 1024...16_777_216),
                ("max_header_count", \.maxHeaderCount, 8...10_000),
                ("upstream_idle_per_server", \.upstreamIdlePerServer, 1...4096),
                ("buffer_bytes", \.bufferBytes, 4096...67_108_864),
                ("redirect_body_bytes", \.redirectBodyBytes, 0...1_073_741_824),
            ]
            for (key, keyPath, range) in fields {
                if let value = claim(section, key, in: table, file: file),
                   let number = integer(value, file: file, key: "limits.\(key)", range: range) {
                    limits[keyPath: keyPath] = number
                }
            }
        }
    }

    // MARK: [[listener]]

    mutating func processListener(_ table: TOMLTable, file: String, path: String) {
        listenerTablesSeen += 1
        checkUnknownKeys(table, known: Self.listenerKeys, file: file, path: path, header: "[[listener]]",
                         elsewhere: Dictionary(uniqueKeysWithValues: Self.listenerTLSKeys.map { ($0, "[listener.tls]") }))
        let name = requiredName(table, "name", file: file, path: path, example: #"name = "public""#)
        let address = address(table, file: file, path: path, example: "127.0.0.1:8080", allowPortZero: true)
        var maxConnections: Int? = nil
        var valid = true
        if let value = table["max_connections"] {
            maxConnections = integer(value, file: file, key: "\(path).max_connections", range: Self.maxConnectionsRange)
            if maxConnections == nil { valid = false }
        }
        var mode = Mode.proxy
        if let value = table["mode"] {
            if let choice = choice(value, Mode.self, file: file, key: "\(path).mode", kind: "mode", plural: "modes") {
                mode = choice
            } else {
                valid = false
            }
        }
        var tls: ListenerTLS? = nil
        if let value = table["tls"] {
            if let section = value.table {
                tls = processListenerTLS(section, file: file, path: "\(path).tls")
                if tls == nil { valid = false }
            } else {
                valid = false
                let hint = value.type == .array ? "; write [listener.tls], not [[listener.tls]]" : ""
                fail(file, "\(path).tls",
                     "expected a table ([listener.tls]) with cert and key, found \(ValueRules.describe(value))\(hint)")
            }
        }
        var httpsRedirectPort: Int? = nil
        if let value = table["https_redirect"] {
            let key = "\(path).https_redirect"
            if let port = integer(value, file: file, key: key, range: 1...65535) {
                if table["tls"] != nil {
                    valid = false
                    fail(file, key, "cannot be set on a TLS listener (this one has [listener.tls]); https_redirect "
                         + "sends a plain listener's requests to HTTPS: set it on a plain listener, e.g. one on port 80")
                } else if let address, address.port != 0, Int(address.port) == port {
                    valid = false
                    fail(file, key, "must not be this listener's own port (\(port)), which serves plain HTTP; "
                         + "name the port of the TLS listener, e.g. https_redirect = 443")
                } else {
                    httpsRedirectPort = port
                }
            } else {
                valid = false
            }
        }
        var nameIsNew = false
        if let name {
            nameIsNew = declare(name, kind: "listener", in: \.listenerNames, file: file, key: "\(path).name")
            if nameIsNew { listenerNameOrder.append(name) }
        }
        var addressIsNew = true
        if let address, address.port != 0 {
            if let other = listenerAddresses[address] {
                addressIsNew = false
                let owner = other.name.map { "listener \"\($0)\" at " } ?? ""
                fail(file, "\(path).address", "address \(address) is already used by \(owner)\(other.location)")
            } else {
                listenerAddresses[address] = (name, "\(file): \(path).address")
            }
        }
        if let name, let address, valid, nameIsNew, addressIsNew {
            listeners.append((Listener(name: name, address: address, mode: mode, tls: tls,
                                       httpsRedirectPort: httpsRedirectPort), maxConnections))
        }
    }

    /// A `[listener.tls]` table, or nil (with errors recorded) when any key is invalid.
    mutating func processListenerTLS(_ table: TOMLTable, file: String, path: String) -> ListenerTLS? {
        checkUnknownKeys(table, known: Self.listenerTLSKeys, file: file, path: path, header: "[listener.tls]",
                         elsewhere: Dictionary(uniqueKeysWithValues: Self.listenerKeys.map { ($0, "[[listener]]") }))
        var valid = true
        let certificate = certificatePair(table, file: file, path: path)
        var tls = ListenerTLS(defaultCertificate: certificate ?? .init(cert: "", key: ""))
        // Certificate path -> the key that first named it.
        var certificates: [String: String] = [:]
        if let certificate {
            certificates[certificate.cert] = "\(path).cert"
        } else {
            valid = false
        }
        if let value = table["sni"] {
            if let elements = arrayOfTables(value, file: file, key: "\(path).sni", header: "[[listener.tls.sni]]") {
                if elements.count < value.array?.count ?? 0 { valid = false }
                var elsewhere = Dictionary(uniqueKeysWithValues: Self.listenerTLSKeys.map { ($0, "[listener.tls]") })
                for key in Self.listenerKeys { elsewhere[key] = "[[listener]]" }
                for (index, element) in elements {
                    let entryPath = "\(path).sni[\(index)]"
                    checkUnknownKeys(element, known: Self.sniKeys, file: file, path: entryPath,
                                     header: "[[listener.tls.sni]]", elsewhere: elsewhere)
                    guard let pair = certificatePair(element, file: file, path: entryPath) else {
                        valid = false
                        continue
                    }
                    if let first = certificates[pair.cert] {
                        valid = false
                        fail(file, "\(entryPath).cert", "certificate file \"\(pair.cert)\" is already used by \(first); "
                             + "list each certificate once (the names in it choose it)")
                        continue
                    }
                    certificates[pair.cert] = "\(entryPath).cert"
                    tls.sniCertificates.append(pair)
                }
            } else {
                valid = false
            }
        }
        if let value = table["profile"] {
            if let profile = choice(value, ListenerTLS.Profile.self, file: file, key: "\(path).profile", kind: "profile",
                                    plural: "profiles") {
                tls.profile = profile
            } else {
                valid = false
            }
        }
        if let value = table["ocsp"] {
            if let ocsp = tlsFile(value, file: file, key: "\(path).ocsp", kind: .ocspResponse) {
                tls.ocspFile = ocsp
            } else {
                valid = false
            }
        }
        if let value = table["hsts"] {
            if let text = string(value, file: file, key: "\(path).hsts") {
                if text.allSatisfy(\.isWhitespace) {
                    valid = false
                    fail(file, "\(path).hsts", "must not be empty; leave hsts out to add no Strict-Transport-Security "
                         + "header, or write e.g. hsts = \"max-age=63072000\"")
                } else if ValueRules.isValidHSTS(text) {
                    tls.hsts = text
                } else {
                    valid = false
                    fail(file, "\(path).hsts", "invalid hsts \"\(ValueRules.clip(text))\"; \(ValueRules.hstsForm)")
                }
            } else {
                valid = false
            }
        }
        if let value = table["ticket_rotation"] {
            if let duration = duration(value, file: file, key: "\(path).ticket_rotation",
                                       minimum: ListenerTLS.minimumTicketRotation) {
                tls.ticketRotation = duration
            } else {
                valid = false
            }
        }
        if let value = table["handshake_timeout"] {
            if let duration = duration(value, file: file, key: "\(path).handshake_timeout") {
                tls.handshakeTimeout = duration
            } else {
                valid = false
            }
        }
        return valid ? tls : nil
    }

    /// `cert` and `key` of a `[listener.tls]` or `[[listener.tls.sni]]` table: both required, each a readable PEM
    /// file. nil (with errors recorded) when either is missing or invalid.
    mutating func certificatePair(_ table: TOMLTable, file: String, path: String) -> ListenerTLS.CertificatePair? {
        let certExample = "cert = \"\(ValueRules.TLSFile.certificate.example)\""
        let keyExample = "key = \"\(ValueRules.TLSFile.privateKey.example)\""
        var cert: String? = nil
        var key: String? = nil
        if let value = table["cert"] {
            cert = tlsFile(value, file: file, key: "\(path).cert", kind: .certificate)
        } else if table["key"] != nil {
            fail(file, "\(path).cert", "missing required key; key is set, so cert must name its certificate (with its "
                 + "chain), e.g. \(certExample)")
        } else {
            fail(file, "\(path).cert", "missing required key, e.g. \(certExample)")
        }
        if let value = table["key"] {
            key = tlsFile(value, file: file, key: "\(path).key", kind: .privateKey)
        } else if table["cert"] != nil {
            fail(file, "\(path).key", "missing required key; cert is set, so key must name its private key, e.g. \(keyExample)")
        } else {
            fail(file, "\(path).key", "missing required key, e.g. \(keyExample)")
        }
        guard let cert, let key else { return nil }
        return ListenerTLS.CertificatePair(cert: cert, key: key)
    }

    // MARK: [[pool]] and [[pool.server]]

    mutating func processPool(_ table: TOMLTable, file: String, path: String) {
        var elsewhere = Dictionary(uniqueKeysWithValues: Self.serverKeys.map { ($0, "[[pool.server]]") })
        for key in Self.healthKeys { elsewhere[key] = "[pool.health]" }
        for key in Self.poolTLSKeys { elsewhere[key] = "[pool.tls]" }
        checkUnknownKeys(table, known: Self.poolKeys, file: file, path: path, header: "[[pool]]", elsewhere: elsewhere)
        let name = requiredName(table, "name", file: file, path: path, example: #"name = "demo""#)
        var nameIsNew = false
        if let name {
            nameIsNew = declare(name, kind: "pool", in: \.poolNames, file: file, key: "\(path).name")
            if nameIsNew { poolNameOrder.append(name) }
        }
        var valid = true
        var pool = Pool(name: name ?? "", servers: [])
        if let value = table["policy"] {
            if let policy = choice(value, PolicyName.self, file: file, key: "\(path).policy", kind: "policy",
                                     plural: "policies") {
                pool.policy = policy
            } else {
                valid = false
            }
        }
        for (key, keyPath) in [("first_level", \Pool.firstLevel), ("second_level", \Pool.secondLevel)] {
            guard let value = table[key] else { continue }
            if let level = level(value, file: file, key: "\(path).\(key)") {
                pool[keyPath: keyPath] = level
            } else {
                valid = false
            }
        }
        if let value = table["hash_key"] {
            if let hashKey = hashKey(value, file: file, key: "\(path).hash_key") {
                pool.hashKey = hashKey
            } else {
                valid = false
            }
        }
        let integers: [(String, WritableKeyPath<Pool, Int>, ClosedRange<Int>)] = [
            ("retries", \.retries, 0...10), ("max_queue", \.maxQueue, 0...100_000),
            ("passive_failures", \.passiveFailures, 0...100),
        ]
        for (key, keyPath, range) in integers {
            guard let value = table[key] else { continue }
            if let number = integer(value, file: file, key: "\(path).\(key)", range: range) {
                pool[keyPath: keyPath] = number
            } else {
                valid = false
            }
        }
        if let value = table["slow_start"] {
            if let duration = duration(value, file: file, key: "\(path).slow_start", allowZero: true) {
                pool.slowStart = duration
            } else {
                valid = false
            }
        }
        if let value = table["queue_timeout"] {
            if let duration = duration(value, file: file, key: "\(path).queue_timeout") {
                pool.queueTimeout = duration
            } else {
                valid = false
            }
        }
        if let value = table["rewrite_body_types"] {
            if let types = contentTypes(value, file: file, key: "\(path).rewrite_body_types") {
                pool.rewriteBodyTypes = types
            } else {
                valid = false
            }
        }
        if let value = table["health"] {
            if let section = value.table {
                if let health = processHealth(section, file: file, path: "\(path).health") {
                    pool.health = health
                } else {
                    valid = false
                }
            } else {
                valid = false
                let hint = value.type == .array ? "; write [pool.health], not [[pool.health]]" : ""
                fail(file, "\(path).health", "expected a table ([pool.health]), found \(ValueRules.describe(value))\(hint)")
            }
        }
        if let value = table["tls"] {
            if value.type == .bool, let enabled = value.bool {
                pool.tls = enabled ? PoolTLS() : nil
            } else if let section = value.table {
                if let tls = processPoolTLS(section, file: file, path: "\(path).tls") {
                    pool.tls = tls
                } else {
                    valid = false
                }
            } else {
                valid = false
                let hint = value.type == .array ? "; write [pool.tls], not [[pool.tls]]" : ""
                fail(file, "\(path).tls", "expected a table ([pool.tls]) or a boolean (tls = true), found "
                     + "\(ValueRules.describe(value))\(hint)")
            }
        }
        var servers: [Server] = []
        var serversValid = true
        let noServers = (name.map { "pool \"\($0)\"" } ?? "this pool")
            + " has no servers; add at least one [[pool.server]] with id and address after the [[pool]]"
        if let value = table["server"] {
            if let elements = arrayOfTables(value, file: file, key: "\(path).server", header: "[[pool.server]]") {
                if elements.count < value.array?.count ?? 0 { serversValid = false }
                for (index, element) in elements {
                    if let server = processServer(element, file: file, path: "\(path).server[\(index)]") {
                        servers.append(server)
                    } else {
                        serversValid = false
                    }
                }
                if value.array?.isEmpty ?? false { fail(file, "\(path).server", noServers) }
            } else {
                serversValid = false
            }
        } else {
            fail(file, "\(path).server", noServers)
        }
        if name != nil, nameIsNew, valid, serversValid, !servers.isEmpty {
            pool.servers = servers
            pools.append(pool)
        }
    }

    /// A `[pool.health]` table, or nil (with errors recorded) when any key is invalid.
    mutating func processHealth(_ table: TOMLTable, file: String, path: String) -> HealthCheck? {
        checkUnknownKeys(table, known: Self.healthKeys, file: file, path: path, header: "[pool.health]",
                         elsewhere: Dictionary(uniqueKeysWithValues: Self.poolKeys.map { ($0, "[[pool]]") }))
        var valid = true
        var health = HealthCheck()
        if let value = table["type"] {
            if let kind = choice(value, HealthCheck.Kind.self, file: file, key: "\(path).type",
                                 kind: "health check type", plural: "types") {
                health.kind = kind
            } else {
                valid = false
            }
        }
        var intervalText: String? = nil
        if let value = table["interval"] {
            if let duration = duration(value, file: file, key: "\(path).interval", minimum: .milliseconds(100)) {
                health.interval = duration
                intervalText = value.string
            } else {
                valid = false
            }
        }
        var timeoutText: String? = nil
        if let value = table["timeout"] {
            if let duration = duration(value, file: file, key: "\(path).timeout") {
                health.timeout = duration
                timeoutText = value.string
            } else {
                valid = false
            }
        }
        let intervalOK = table["interval"] == nil || intervalText != nil
        let timeoutOK = table["timeout"] == nil || timeoutText != nil
        if intervalOK, timeoutOK, health.timeout >= health.interval {
            valid = false
            let interval = intervalText.map { "\"\(ValueRules.clip($0))\"" }
                ?? "default \"\(ValueRules.formatDuration(health.interval))\""
            let timeout = timeoutText.map { "\"\(ValueRules.clip($0))\"" }
                ?? "default \"\(ValueRules.formatDuration(health.timeout))\""
            if timeoutText != nil || intervalText == nil {
                fail(file, "\(path).timeout", "must be shorter than \(path).interval (\(interval)), found \(timeout)")
            } else {
                fail(file, "\(path).interval", "must be longer than \(path).timeout (\(timeout)), found \(interval)")
            }
        }
        for (key, keyPath) in [("rise", \HealthCheck.rise), ("fall", \HealthCheck.fall)] {
            guard let value = table[key] else { continue }
            if let number = integer(value, file: file, key: "\(path).\(key)", range: 1...100) {
                health[keyPath: keyPath] = number
            } else {
                valid = false
            }
        }
        if let value = table["method"] {
            if let text = string(value, file: file, key: "\(path).method"), ValueRules.isToken(text) {
                health.method = text
            } else {
                valid = false
                if let text = value.string {
                    fail(file, "\(path).method", "invalid method \"\(ValueRules.clip(text))\"; \(ValueRules.methodForm)")
                }
            }
        }
        if let value = table["path"] {
            if let text = string(value, file: file, key: "\(path).path"), ValueRules.isValidRequestPath(text) {
                health.path = text
            } else {
                valid = false
                if let text = value.string {
                    fail(file, "\(path).path", "invalid path \"\(ValueRules.clip(text))\"; \(ValueRules.healthPathForm)")
                }
            }
        }
        if let value = table["host"] {
            if let text = string(value, file: file, key: "\(path).host") {
                if text.isEmpty {
                    valid = false
                    fail(file, "\(path).host", "must not be empty; leave host out to send the server's address")
                } else if ValueRules.isValidHostHeader(text) {
                    health.host = text
                } else {
                    valid = false
                    fail(file, "\(path).host", "invalid host \"\(ValueRules.clip(text))\"; \(ValueRules.healthHostForm)")
                }
            } else {
                valid = false
            }
        }
        if let value = table["expect_status"] {
            if let statuses = expectStatus(value, file: file, key: "\(path).expect_status") {
                health.expectStatus = statuses
            } else {
                valid = false
            }
        }
        if let value = table["expect_body"] {
            if let text = string(value, file: file, key: "\(path).expect_body") {
                if text.isEmpty {
                    valid = false
                    fail(file, "\(path).expect_body", "must not be empty; leave expect_body out to not check the body")
                } else {
                    health.expectBody = text
                }
            } else {
                valid = false
            }
        }
        return valid ? health : nil
    }

    /// A `[pool.tls]` table, or nil (with errors recorded) when any key is invalid.
    mutating func processPoolTLS(_ table: TOMLTable, file: String, path: String) -> PoolTLS? {
        checkUnknownKeys(table, known: Self.poolTLSKeys, file: file, path: path, header: "[pool.tls]",
                         elsewhere: Dictionary(uniqueKeysWithValues: Self.poolKeys.map { ($0, "[[pool]]") }))
        var valid = true
        var tls = PoolTLS()
        for (key, keyPath) in [("enabled", \PoolTLS.enabled), ("verify", \PoolTLS.verify)] {
            guard let value = table[key] else { continue }
            if let flag = boolean(value, file: file, key: "\(path).\(key)") {
                tls[keyPath: keyPath] = flag
            } else {
                valid = false
            }
        }
        if let value = table["ca_file"] {
            if let caFile = tlsFile(value, file: file, key: "\(path).ca_file", kind: .caBundle) {
                tls.caFile = caFile
            } else {
                valid = false
            }
        }
        if let value = table["server_name"] {
            if let text = string(value, file: file, key: "\(path).server_name") {
                if text.isEmpty {
                    valid = false
                    fail(file, "\(path).server_name", "must not be empty; leave server_name out to use the host of the "
                         + "server's public_url, or else its address")
                } else if let name = ValueRules.normalizedServerName(text) {
                    tls.serverName = name
                } else {
                    valid = false
                    fail(file, "\(path).server_name",
                         "invalid server_name \"\(ValueRules.clip(text))\"; \(ValueRules.serverNameForm)")
                }
            } else {
                valid = false
            }
        }
        let pair: [(key: String, other: String, kind: ValueRules.TLSFile, keyPath: WritableKeyPath<PoolTLS, String?>,
                    needs: String)] = [
            ("client_cert", "client_key", .clientCertificate, \.clientCert, "its certificate (with its chain)"),
            ("client_key", "client_cert", .clientKey, \.clientKey, "its private key"),
        ]
        for (key, other, kind, keyPath, needs) in pair {
            if let value = table[key] {
                if let path = tlsFile(value, file: file, key: "\(path).\(key)", kind: kind) {
                    tls[keyPath: keyPath] = path
                } else {
                    valid = false
                }
            } else if table[other] != nil {
                valid = false
                fail(file, "\(path).\(key)", "missing; \(other) is set, so \(key) must name \(needs) (set both or "
                     + "neither), e.g. \(key) = \"\(kind.example)\"")
            }
        }
        return valid ? tls : nil
    }

    mutating func processServer(_ table: TOMLTable, file: String, path: String) -> Server? {
        checkUnknownKeys(table, known: Self.serverKeys, file: file, path: path, header: "[[pool.server]]",
                         elsewhere: Dictionary(uniqueKeysWithValues: Self.poolKeys.map { ($0, "[[pool]]") }))
        var valid = true
        let id = requiredName(table, "id", file: file, path: path, example: #"id = "demo-1""#)
        if let id {
            if let first = serverIDs[id] {
                valid = false
                fail(file, "\(path).id",
                     "duplicate server id \"\(id)\"; already defined at \(first) (server ids must be unique across all pools)")
            } else {
                serverIDs[id] = "\(file): \(path).id"
            }
        }
        let address = address(table, file: file, path: path, example: "127.0.0.1:9001", allowPortZero: false)
        let weight = optionalInteger(table, "weight", file: file, path: path, range: 1...256, valid: &valid)
        let capacity = optionalInteger(table, "capacity", file: file, path: path, range: 1...Int.max, valid: &valid)
        let group = optionalInteger(table, "group", file: file, path: path, range: 0...Int.max, valid: &valid)
        let maxConns = optionalInteger(table, "max_conns", file: file, path: path, range: 1...Int.max, valid: &valid)
        var publicURL: String? = nil
        if let value = table["public_url"] {
            if let text = string(value, file: file, key: "\(path).public_url") {
                if ValueRules.isValidPublicURL(text) {
                    publicURL = text
                } else {
                    valid = false
                    fail(file, "\(path).public_url", "invalid URL \"\(ValueRules.clip(text))\"; \(ValueRules.urlForm)")
                }
            } else {
                valid = false
            }
        }
        guard valid, let id, let address else { return nil }
        return Server(id: id, address: address, weight: weight ?? 1, capacity: capacity ?? 100,
                      publicURL: publicURL, group: group ?? 0, maxConns: maxConns)
    }

    // MARK: [[route]]

    mutating func processRoute(_ table: TOMLTable, file: String, path: String) {
        routeTablesSeen += 1
        var elsewhere = Self.settingsHome
        for key in Self.stickyRuleKeys where !Self.routeKeys.contains(key) { elsewhere[key] = "[[route.sticky]]" }
        checkUnknownKeys(table, known: Self.routeKeys, file: file, path: path, header: "[[route]]",
                         elsewhere: elsewhere)
        var valid = true
        let name = requiredName(table, "name", file: file, path: path, example: #"name = "default""#)
        if let name, !declare(name, kind: "route", in: \.routeNames, file: file, key: "\(path).name") { valid = false }
        let pool = requiredName(table, "pool", file: file, path: path, example: #"pool = "demo""#)
        var host: String? = nil
        if let value = table["host"] {
            if let text = string(value, file: file, key: "\(path).host") {
                if text.isEmpty {
                    valid = false
                    fail(file, "\(path).host", "must not be empty; leave host out to match any host")
                } else if let normalized = ValueRules.normalizedHost(text) {
                    host = normalized
                } else {
                    valid = false
                    fail(file, "\(path).host", "invalid host \"\(ValueRules.clip(text))\"; \(ValueRules.hostForm)")
                }
            } else {
                valid = false
            }
        }
        var pathPrefix = "/"
        var pathPrefixValid = true
        if let value = table["path"] {
            pathPrefixValid = false
            if let text = string(value, file: file, key: "\(path).path") {
                if ValueRules.isValidPathPrefix(text) {
                    pathPrefix = text
                    pathPrefixValid = true
                } else {
                    valid = false
                    fail(file, "\(path).path", "invalid path \"\(ValueRules.clip(text))\"; \(ValueRules.pathForm)")
                }
            } else {
                valid = false
            }
        }
        var listener: String? = nil
        if table["listener"] != nil {
            listener = requiredName(table, "listener", file: file, path: path, example: #"listener = "public""#)
            if listener == nil { valid = false }
        }
        var spill: String? = nil
        if table["spill"] != nil {
            spill = requiredName(table, "spill", file: file, path: path, example: #"spill = "overflow""#)
            if spill == nil { valid = false }
            if let spill, spill == pool {
                valid = false
                fail(file, "\(path).spill",
                     "spill pool \"\(spill)\" is the route's own pool; name another [[pool]] to take the overflow")
            }
        }
        var mode: Mode? = nil
        if let value = table["mode"] {
            mode = choice(value, Mode.self, file: file, key: "\(path).mode", kind: "mode", plural: "modes")
            if mode == nil { valid = false }
        }
        var redirectStatus = 307
        if let value = table["redirect_status"] {
            if let number = integer(value, file: file, key: "\(path).redirect_status", range: Int.min...Int.max),
               Route.redirectStatuses.contains(number) {
                redirectStatus = number
            } else {
                valid = false
                if let number = value.int {
                    fail(file, "\(path).redirect_status", "must be 302, 303, 307 or 308, found \(number)")
                }
            }
        }
        var sticky: [StickyRule] = []
        if let value = table["sticky"] {
            if let elements = arrayOfTables(value, file: file, key: "\(path).sticky", header: "[[route.sticky]]") {
                if elements.count < value.array?.count ?? 0 { valid = false }
                var seen: [String: String] = [:]
                for (index, element) in elements {
                    let rulePath = "\(path).sticky[\(index)]"
                    guard let rule = processStickyRule(element, file: file, path: rulePath,
                                                       routePath: pathPrefixValid ? pathPrefix : nil) else {
                        valid = false
                        continue
                    }
                    if let first = seen[rule.path] {
                        valid = false
                        fail(file, "\(rulePath).path", "duplicate sticky path \"\(rule.path)\" in this route; already used by \(first)")
                        continue
                    }
                    seen[rule.path] = "\(rulePath).path"
                    sticky.append(rule)
                }
            } else {
                valid = false
            }
        }
        routeReferences.append(RouteReference(file: file, path: path, pool: pool, listener: listener,
                                              spill: spill == pool ? nil : spill))
        if valid, let name, let pool {
            routes.append(Route(name: name, host: host, pathPrefix: pathPrefix, pool: pool, listener: listener,
                                spill: spill, sticky: sticky, mode: mode, redirectStatus: redirectStatus))
        }
    }

    /// A `[[route.sticky]]` table, or nil (with errors recorded) when any key is invalid. `routePath` is the
    /// route's valid `path` (nil when it is invalid), used to check the rule can be reached.
    mutating func processStickyRule(_ table: TOMLTable, file: String, path: String, routePath: String?) -> StickyRule? {
        var elsewhere = Dictionary(uniqueKeysWithValues: Self.routeKeys.map { ($0, "[[route]]") })
        for key in Self.stickySettingsKeys { elsewhere[key] = "[sticky]" }
        checkUnknownKeys(table, known: Self.stickyRuleKeys, file: file, path: path, header: "[[route.sticky]]",
                         elsewhere: elsewhere)
        var valid = true
        var rule = StickyRule(path: "")
        if let value = table["path"] {
            if let text = string(value, file: file, key: "\(path).path") {
                if ValueRules.isValidStickyPath(text) {
                    rule.path = text
                    if let routePath, !routePath.contains("*"), !rule.entryPoint.hasPrefix(routePath),
                       !routePath.hasPrefix(rule.entryPoint) {
                        valid = false
                        fail(file, "\(path).path", "sticky path \"\(ValueRules.clip(text))\" is outside the route's path "
                             + "\"\(ValueRules.clip(routePath))\"; its requests never reach this route (move the rule to a "
                             + "[[route]] whose path covers it)")
                    }
                } else {
                    valid = false
                    fail(file, "\(path).path", "invalid sticky path \"\(ValueRules.clip(text))\"; \(ValueRules.stickyPathForm)")
                }
            } else {
                valid = false
            }
        } else {
            valid = false
            fail(file, "\(path).path", #"missing required key, e.g. path = "/banking/*""#)
        }
        if let value = table["complete"] {
            if let paths = completePaths(value, file: file, key: "\(path).complete") {
                rule.complete = paths
            } else {
                valid = false
            }
        }
        if let value = table["idle_timeout"] {
            if let duration = duration(value, file: file, key: "\(path).idle_timeout", minimum: .seconds(1)) {
                rule.idleTimeout = duration
            } else {
                valid = false
            }
        }
        if let value = table["by"] {
            if let binding = choice(value, StickyRule.Binding.self, file: file, key: "\(path).by", kind: "binding",
                                    plural: "bindings") {
                rule.by = binding
            } else {
                valid = false
            }
        }
        if let value = table["cookie"] {
            if let text = string(value, file: file, key: "\(path).cookie") {
                if ValueRules.isToken(text) {
                    rule.cookieName = text
                } else {
                    valid = false
                    fail(file, "\(path).cookie", "invalid cookie name \"\(ValueRules.clip(text))\"; \(ValueRules.cookieNameForm)")
                }
            } else {
                valid = false
            }
        }
        return valid ? rule : nil
    }

    // MARK: Checks across files

    mutating func finish() {
        // Certain whatever the unreadable files hold: both were written.
        if let inline = inlineSecretLocation, let fileKey = secretFileLocation {
            let (file, key) = Self.split(fileKey)
            fail(file, key, "secret and secret_file are both set (secret at \(inline)); set only one of them")
        }
        let servers = discovery.serversPath, assign = discovery.assignPath
        if let servers, let assign, servers == assign, !discoveryInvalid {
            let serversWritten = discoveryLocations["servers_path"] != nil
            let assignWritten = discoveryLocations["assign_path"] != nil
            if let location = discoveryLocations[assignWritten ? "assign_path" : "servers_path"],
               (serversWritten && assignWritten) || !incomplete {
                let (file, key) = Self.split(location)
                let other = assignWritten ? "servers_path" : "assign_path"
                let shown = "\(serversWritten && assignWritten ? "" : "default ")\"\(ValueRules.clip(servers))\""
                fail(file, key, "must differ from discovery.\(other) (\(shown)); each endpoint needs a path of its own")
            }
        }
        // A clash with an explicitly set admin address is certain even when another file is unreadable.
        if let address = admin.address, address.port != 0, let location = adminLocation,
           let listener = listenerAddresses[address] {
            let owner = listener.name.map { "listener \"\($0)\" at " } ?? ""
            let (file, key) = Self.split(location)
            fail(file, key, "address \(address) is already used by \(owner)\(listener.location); "
                 + "the admin listener needs an address of its own")
        }
        guard !incomplete else { return }
        if let address = admin.address, address.port != 0, !adminAddressWritten,
           let listener = listenerAddresses[address] {
            let (file, key) = Self.split(listener.location)
            fail(file, key, "address \(address) is also the default address of the admin listener; "
                 + #"set [admin] address to another address, or to "off""#)
        }
        for reference in routeReferences {
            if let pool = reference.pool, poolNames[pool] == nil {
                fail(reference.file, "\(reference.path).pool",
                     dangling("pool", pool, defined: poolNameOrder, header: "[[pool]]"))
            }
            if let spill = reference.spill, poolNames[spill] == nil {
                fail(reference.file, "\(reference.path).spill",
                     dangling("pool", spill, defined: poolNameOrder, header: "[[pool]]"))
            }
            if let listener = reference.listener, listenerNames[listener] == nil {
                fail(reference.file, "\(reference.path).listener",
                     dangling("listener", listener, defined: listenerNameOrder, header: "[[listener]]"))
            }
        }
        if listenerTablesSeen == 0 {
            fail(scope, "listener",
                 #"no listener defined; add a [[listener]] with a name and an address, e.g. name = "public" and address = "127.0.0.1:8080""#)
        }
        if routeTablesSeen == 0 {
            fail(scope, "route",
                 #"no route defined; add a [[route]] that sends requests to a pool, e.g. name = "default", path = "/" and pool = "demo""#)
        }
    }

    /// "file: key" -> (file, key). File names may contain ": " only in theory; the key never does.
    static func split(_ location: String) -> (file: String, key: String) {
        guard let range = location.range(of: ": ", options: .backwards) else { return (location, "") }
        return (String(location[..<range.lowerBound]), String(location[range.upperBound...]))
    }

    func dangling(_ kind: String, _ name: String, defined: [String], header: String) -> String {
        if let match = ValueRules.suggestion(for: name, among: defined) {
            return "no \(kind) named \"\(name)\" (did you mean \"\(match)\"?)"
        }
        if defined.isEmpty {
            return "no \(kind) named \"\(name)\"; no \(header) is defined"
        }
        return "no \(kind) named \"\(name)\"; defined \(kind)s: \(ValueRules.quotedList(defined))"
    }

    // MARK: Typed values (each records its own error and returns nil when invalid)

    /// Records the first declaration of `name`; on a repeat records a duplicate error and returns false.
    mutating func declare(_ name: String, kind: String, in declared: WritableKeyPath<Merger, [String: String]>,
                          file: String, key: String) -> Bool {
        if let first = self[keyPath: declared][name] {
            fail(file, key, "duplicate \(kind) name \"\(name)\"; already defined at \(first)")
            return false
        }
        self[keyPath: declared][name] = "\(file): \(key)"
        return true
    }

    mutating func requiredName(_ table: TOMLTable, _ key: String, file: String, path: String, example: String) -> String? {
        guard let value = table[key] else {
            fail(file, "\(path).\(key)", "missing required key, e.g. \(example)")
            return nil
        }
        guard let text = string(value, file: file, key: "\(path).\(key)") else { return nil }
        if text.allSatisfy(\.isWhitespace) {
            fail(file, "\(path).\(key)", "must not be empty, e.g. \(example)")
            return nil
        }
        return text
    }

    mutating func string(_ value: TOMLValueConvertible, file: String, key: String) -> String? {
        if let text = value.string { return text }
        fail(file, key, "expected a string, found \(ValueRules.describe(value))")
        return nil
    }

    mutating func integer(_ value: TOMLValueConvertible, file: String, key: String, range: ClosedRange<Int>) -> Int? {
        guard let number = value.int else {
            fail(file, key, "expected an integer, found \(ValueRules.describe(value))")
            return nil
        }
        guard range.contains(number) else {
            if range.upperBound == Int.max {
                fail(file, key, "must be at least \(range.lowerBound), found \(number)")
            } else {
                fail(file, key, "must be between \(range.lowerBound) and \(range.upperBound), found \(number)")
            }
            return nil
        }
        return number
    }

    mutating func boolean(_ value: TOMLValueConvertible, file: String, key: String) -> Bool? {
        if value.type == .bool, let flag = value.bool { return flag }
        fail(file, key, "expected true or false, found \(ValueRules.describe(value))")
        return nil
    }

    /// A TLS file key: a non-empty path naming a readable file, PEM text unless `kind` is the OCSP response.
    mutating func tlsFile(_ value: TOMLValueConvertible, file: String, key: String, kind: ValueRules.TLSFile) -> String? {
        guard let path = string(value, file: file, key: key) else { return nil }
        if path.allSatisfy(\.isWhitespace) {
            let name = key.split(separator: ".").last.map(String.init) ?? key
            fail(file, key, "must not be empty, e.g. \(name) = \"\(kind.example)\"")
            return nil
        }
        if let problem = ValueRules.checkTLSFile(path, pem: kind.isPEM) {
            fail(file, key, problem.message(kind))
            return nil
        }
        return path
    }

    mutating func optionalInteger(_ table: TOMLTable, _ key: String, file: String, path: String,
                                  range: ClosedRange<Int>, valid: inout Bool) -> Int? {
        guard let value = table[key] else { return nil }
        let number = integer(value, file: file, key: "\(path).\(key)", range: range)
        if number == nil { valid = false }
        return number
    }

    /// A duration string; zero only when `allowZero`; at least `minimum` when given.
    mutating func duration(_ value: TOMLValueConvertible, file: String, key: String, allowZero: Bool = false,
                           minimum: Duration? = nil) -> Duration? {
        let form = allowZero ? ValueRules.durationFormAllowingZero : ValueRules.durationForm
        if let text = value.string {
            if let duration = ValueRules.parseDuration(text, allowZero: allowZero) {
                if let minimum, duration < minimum {
                    fail(file, key, "must be at least \(ValueRules.formatDuration(minimum)), found \"\(ValueRules.clip(text))\"")
                    return nil
                }
                return duration
            }
            fail(file, key, "\(form), found \"\(ValueRules.clip(text))\"")
        } else {
            fail(file, key, "\(form), found \(ValueRules.describe(value))")
        }
        return nil
    }

    /// One of an enumeration's raw values: `unknown <kind> "x" (did you mean "y"?); supported <plural>: ...`.
    mutating func choice<Choice: RawRepresentable & CaseIterable>(
        _ value: TOMLValueConvertible, _ type: Choice.Type, file: String, key: String, kind: String, plural: String
    ) -> Choice? where Choice.RawValue == String {
        guard let text = string(value, file: file, key: key) else { return nil }
        if let result = Choice(rawValue: text) { return result }
        let names = Choice.allCases.map(\.rawValue)
        let hint = ValueRules.suggestion(for: text, among: names).map { " (did you mean \"\($0)\"?)" } ?? ""
        fail(file, key, "unknown \(kind) \"\(ValueRules.clip(text))\"\(hint); supported \(plural): \(ValueRules.quotedList(names))")
        return nil
    }

    /// `first_level` / `second_level`: 0.0...1.0 as a float, 0 or 1, or a percentage string.
    mutating func level(_ value: TOMLValueConvertible, file: String, key: String) -> Double? {
        switch ValueRules.parseLevel(value) {
        case .value(let level):
            return level
        case .outOfRange(let found):
            fail(file, key, #"must be between 0.0 and 1.0 (or "0%" and "100%"), found \#(found)"#)
        case .malformed:
            let found = value.string.map { "\"\(ValueRules.clip($0))\"" } ?? ValueRules.describe(value)
            fail(file, key, "\(ValueRules.levelForm), found \(found)")
        }
        return nil
    }

    mutating func hashKey(_ value: TOMLValueConvertible, file: String, key: String) -> HashKey? {
        guard let text = string(value, file: file, key: key) else { return nil }
        switch ValueRules.parseHashKey(text) {
        case .success(let hashKey):
            return hashKey
        case .failure(.unknown):
            let hint = ValueRules.suggestion(for: text, among: ["source", "path"]).map { " (did you mean \"\($0)\"?)" }
            fail(file, key, "invalid hash_key \"\(ValueRules.clip(text))\"\(hint ?? ""); \(ValueRules.hashKeyForm)")
        case .failure(.badName(let kind, let name)):
            let reason = name.isEmpty ? "the \(kind) name is missing"
                : "\"\(ValueRules.clip(name))\" is not a valid \(kind) name"
            fail(file, key, "invalid hash_key \"\(ValueRules.clip(text))\": \(reason); \(ValueRules.hashKeyForm)")
        }
        return nil
    }

    /// `expect_status`: a non-empty array of statuses (integers) and `"low-high"` / `"status"` strings.
    mutating func expectStatus(_ value: TOMLValueConvertible, file: String, key: String) -> [ClosedRange<Int>]? {
        let arrayForm = #"expected an array of statuses such as [200, 204] or ["200-399"]"#
        guard let array = value.array else {
            fail(file, key, "\(arrayForm), found \(ValueRules.describe(value))")
            return nil
        }
        guard !array.isEmpty else {
            fail(file, key, "must not be empty; \(arrayForm)")
            return nil
        }
        var ranges: [ClosedRange<Int>] = []
        var valid = true
        for (index, element) in array.enumerated() {
            let elementKey = "\(key)[\(index)]"
            if element.type == .int {
                if let status = integer(element, file: file, key: elementKey, range: ValueRules.statusRange) {
                    ranges.append(status...status)
                } else {
                    valid = false
                }
            } else if let text = element.string {
                let what = text.contains("-") ? "status range" : "status"
                let shown = ValueRules.clip(text)
                switch ValueRules.parseStatusRange(text) {
                case .success(let range):
                    ranges.append(range)
                case .failure(.malformed):
                    valid = false
                    fail(file, elementKey, "invalid \(what) \"\(shown)\"; \(ValueRules.statusForm)")
                case .failure(.outOfRange):
                    valid = false
                    fail(file, elementKey, "invalid \(what) \"\(shown)\": statuses must be between 100 and 599")
                case .failure(.reversed):
                    valid = false
                    let bounds = text.split(separator: "-")
                    fail(file, elementKey, "invalid \(what) \"\(shown)\": the first status must not be greater "
                         + "than the second (write \"\(bounds[1])-\(bounds[0])\")")
                }
            } else {
                valid = false
                fail(file, elementKey, "\(ValueRules.statusForm), found \(ValueRules.describe(element))")
            }
        }
        return valid ? ranges : nil
    }

    /// `[admin] address`: `"off"` (nil) or a numeric address; nil result (with an error recorded) when invalid.
    mutating func adminAddress(_ value: TOMLValueConvertible, file: String, key: String) -> SocketAddress?? {
        let off = #", or "off" to turn the admin listener off"#
        let example = "127.0.0.1:9090"
        guard let text = value.string else {
            fail(file, key, ValueRules.addressForm(example: example) + off + ", found \(ValueRules.describe(value))")
            return nil
        }
        if text == "off" { return .some(nil) }
        switch SocketAddress.parseDetailed(text) {
        case .failure(let problem):
            fail(file, key, ValueRules.addressProblem(ValueRules.clip(text), problem, example: example) + off)
            return nil
        case .success(let address):
            return .some(address)
        }
    }

    mutating func accessLog(_ value: TOMLValueConvertible, file: String, key: String) -> AccessLog? {
        let form = #"expected "stdout", "off" or an absolute file path such as "/var/log/weir/access.log""#
        guard let text = value.string else {
            fail(file, key, "\(form), found \(ValueRules.describe(value))")
            return nil
        }
        switch text {
        case "stdout": return .stdout
        case "off": return .off
        default:
            if text.hasPrefix("/") && text.count > 1 && !text.hasSuffix("/") { return .file(text) }
            fail(file, key, "\(form), found \"\(ValueRules.clip(text))\"")
            return nil
        }
    }

    /// `[discovery]` paths: `"off"` (nil) or a path; nil result (with an error recorded) when invalid.
    mutating func discoveryPath(_ value: TOMLValueConvertible, file: String, key: String, example: String) -> String?? {
        let form = ValueRules.discoveryPathForm(example: example)
        guard let text = value.string else {
            fail(file, key, "\(form), found \(ValueRules.describe(value))")
            return nil
        }
        if text == "off" { return .some(nil) }
        guard ValueRules.isValidPathPrefix(text), !text.contains("*") else {
            fail(file, key, "invalid path \"\(ValueRules.clip(text))\"; \(form)")
            return nil
        }
        return .some(text)
    }

    /// `[[route.sticky]] complete`: an array of paths or patterns, each starting with "/".
    mutating func completePaths(_ value: TOMLValueConvertible, file: String, key: String) -> [String]? {
        guard let array = value.array else {
            fail(file, key, "\(ValueRules.completeArrayForm), found \(ValueRules.describe(value))")
            return nil
        }
        var paths: [String] = []
        var valid = true
        for (index, element) in array.enumerated() {
            let elementKey = "\(key)[\(index)]"
            guard let text = element.string else {
                valid = false
                fail(file, elementKey, "\(ValueRules.completePathForm), found \(ValueRules.describe(element))")
                continue
            }
            if ValueRules.isValidPathPrefix(text) {
                paths.append(text)
            } else {
                valid = false
                fail(file, elementKey, "invalid path \"\(ValueRules.clip(text))\"; \(ValueRules.completePathForm)")
            }
        }
        return valid ? paths : nil
    }

    /// `[[pool]] rewrite_body_types`: an array of `type/subtype` media types, returned in lower case.
    mutating func contentTypes(_ value: TOMLValueConvertible, file: String, key: String) -> [String]? {
        guard let array = value.array else {
            fail(file, key, "\(ValueRules.contentTypeArrayForm), found \(ValueRules.describe(value))")
            return nil
        }
        var types: [String] = []
        var valid = true
        for (index, element) in array.enumerated() {
            let elementKey = "\(key)[\(index)]"
            guard let text = element.string else {
                valid = false
                fail(file, elementKey, "\(ValueRules.contentTypeForm), found \(ValueRules.describe(element))")
                continue
            }
            if ValueRules.isValidContentType(text) {
                types.append(text.lowercased())
            } else {
                valid = false
                fail(file, elementKey, "invalid content type \"\(ValueRules.clip(text))\"; \(ValueRules.contentTypeForm)")
            }
        }
        return valid ? types : nil
    }

    mutating func address(_ table: TOMLTable, file: String, path: String, example: String,
                          allowPortZero: Bool) -> SocketAddress? {
        let key = "\(path).address"
        guard let value = table["address"] else {
            fail(file, key, "missing required key, e.g. address = \"\(example)\"")
            return nil
        }
        guard let text = string(value, file: file, key: key) else { return nil }
        switch SocketAddress.parseDetailed(text) {
        case .failure(let problem):
            fail(file, key, ValueRules.addressProblem(ValueRules.clip(text), problem, example: example))
            return nil
        case .success(let address):
            if address.port == 0 && !allowPortZero {
                fail(file, key, "invalid address \"\(text)\": a server port must be between 1 and 65535; "
                     + ValueRules.addressForm(example: example))
                return nil
            }
            return address
        }
    }
}

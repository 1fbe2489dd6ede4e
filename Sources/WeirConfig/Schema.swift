import TOMLKit

// Every table of the configuration as data: its keys in the order they are read and listed to operators, each
// with its rule (type, range, form and message) and where its value goes. The defaults are those of the
// public initializers in Configuration.swift, which each table's `defaults` starts from.

/// A `[[listener]]` while it is read: `max_connections` stays nil unless written (it defaults to
/// `[global] max_connections`, known only after every file).
struct ListenerDraft {
    var listener = Listener(name: "", address: Schema.noAddress)
    var maxConnections: Int? = nil
}

/// A `[[route]]` while it is read: whether its `path` was valid (its sticky rules are checked against it).
struct RouteDraft {
    var route = Route(name: "", pool: "")
    var pathValid = true
}

/// A `[[route.sticky]]` while it is read, with its route's valid `path` (nil when that is invalid).
struct StickyRuleDraft {
    var rule = StickyRule(path: "")
    var routePath: String? = nil
}

/// A `[pool.health]` while it is read: `interval` and `timeout` as written (when valid), for the message that
/// compares them.
struct HealthDraft {
    var health = HealthCheck()
    var intervalText: String? = nil
    var timeoutText: String? = nil
}

/// `[admin]` across the files: whether `address` was written (valid or not) and where it was set (when valid).
struct AdminState {
    var settings = AdminSettings()
    var written = false
    var location: String? = nil
    /// Where `token` and `token_file` were written (valid or not), so that setting both is reported.
    var tokenLocation: String? = nil
    var tokenFileLocation: String? = nil
}

/// `[sticky]` across the files: the secret as written inline or read from `secret_file`, and where each key
/// was written (valid or not, so that setting both is reported whatever else is wrong).
struct StickyState: SecretState {
    var settings = StickySettings()
    var inlineSecret: String? = nil
    var inlineLocation: String? = nil
    var fileSecret: String? = nil
    var fileLocation: String? = nil
    var secretFilePath: String? {
        get { settings.secretFile }
        set { settings.secretFile = newValue }
    }
}

/// A table with `secret` / `secret_file` (`[sticky]`, `[group]`) while it is read: the secret as written inline or
/// read from the file, and where each key was written (valid or not, so that setting both is always reported).
protocol SecretState {
    var inlineSecret: String? { get set }
    var inlineLocation: String? { get set }
    var fileSecret: String? { get set }
    var fileLocation: String? { get set }
    /// Where the settings keep the path of `secret_file`.
    var secretFilePath: String? { get set }
}

/// `[discovery]` across the files: where each key was written (then its default is not in use), and whether
/// any value was invalid (then the paths are not compared).
struct DiscoveryState {
    var settings = DiscoverySettings()
    var locations: [String: String] = [:]
    var invalid = false
}

enum Schema {
    /// Stands in for a required address until it is read (port 0 never reaches a listener or server unchecked).
    static let noAddress = SocketAddress(host: "0.0.0.0", port: 0, isIPv6: false)
    static let maxConnectionsRange = 1...10_000_000

    // MARK: Top level

    /// Top-level names in the order they are processed, with the header an operator writes for each.
    static let topLevel: [(name: String, header: String)] = [
        ("global", "[global]"), ("timeouts", "[timeouts]"), ("limits", "[limits]"), ("admin", "[admin]"),
        ("sticky", "[sticky]"), ("discovery", "[discovery]"),
        ("listener", "[[listener]]"), ("pool", "[[pool]]"), ("route", "[[route]]"),
        ("peer", "[peer]"), ("group", "[group]"),
        ("http2", "[http2]"),
    ]
    static var topLevelHeaders: String { topLevel.map(\.header).joined(separator: ", ") }

    /// The settings tables whose keys are hinted at when written elsewhere ("belongs in [timeouts]").
    /// `[admin]` is left out: its one key, `address`, is a key of many tables.
    static var settingsHomes: [Neighbour] {
        [global.asNeighbour, timeouts.asNeighbour, limits.asNeighbour, sticky.asNeighbour, discovery.asNeighbour]
    }

    // MARK: Settings (each key set in one file only)

    static var global: TableSpec<GlobalSettings> {
        TableSpec(header: "[global]", keys: [
            .key("workers", .integer(0...1024), \.workers),
            .key("max_connections", .integer(maxConnectionsRange), \.maxConnections),
            .key("drain_timeout", .duration(), \.drainTimeout),
            .key("access_log", .accessLog, \.accessLog),
            .key("state_dir", .nonEmpty("must not be empty; \(ValueRules.stateDirectoryForm)", blank: true),
                 \.stateDirectory),
            .key("access_log_format", .choice(kind: "access log format", plural: "formats"), \.accessLogFormat),
            .key("log_level", .logLevel, \.logLevel),
            .key("log_format", .choice(kind: "log format", plural: "formats"), \.logFormat),
        ], defaults: { GlobalSettings() }, oncePerConfiguration: true, neighbours: { settingsHomes })
    }

    static var timeouts: TableSpec<Timeouts> {
        TableSpec(header: "[timeouts]", keys: [
            .key("client_header", .duration(), \.clientHeader),
            .key("client_idle", .duration(), \.clientIdle),
            .key("client_body", .duration(), \.clientBody),
            .key("upstream_connect", .duration(), \.upstreamConnect),
            .key("upstream_response", .duration(), \.upstreamResponse),
            .key("upstream_idle", .duration(), \.upstreamIdle),
            .key("tunnel_idle", .duration(), \.tunnelIdle),
        ], defaults: { Timeouts() }, oncePerConfiguration: true, neighbours: { settingsHomes })
    }

    static var limits: TableSpec<Limits> {
        TableSpec(header: "[limits]", keys: [
            .key("max_request_line", .integer(256...1_048_576), \.maxRequestLine),
            .key("max_header_bytes", .integer(1024...16_777_216), \.maxHeaderBytes),
            .key("max_header_count", .integer(8...10_000), \.maxHeaderCount),
            .key("upstream_idle_per_server", .integer(1...4096), \.upstreamIdlePerServer),
            .key("buffer_bytes", .integer(4096...67_108_864), \.bufferBytes),
            .key("redirect_body_bytes", .integer(0...1_073_741_824), \.redirectBodyBytes),
        ], defaults: { Limits() }, oncePerConfiguration: true, neighbours: { settingsHomes })
    }

    static var admin: TableSpec<AdminState> {
        TableSpec(header: "[admin]", keys: [
            KeySpec("address") { value, site, reader, state in
                state.written = true
                if let handled = unixAdminAddress(value, site, &reader, &state) { return handled }
                guard let address = Rule.adminAddress.check(value, site, &reader) else { return false }
                state.settings.address = address
                state.location = site.location
                return true
            },
            adminTokenKey, adminTokenFileKey, adminSocketModeKey,
        ], defaults: { AdminState() }, oncePerConfiguration: true, neighbours: { settingsHomes })
    }

    static var sticky: TableSpec<StickyState> {
        TableSpec(header: "[sticky]", keys: [
            secretKey(), secretFileKey(example: "/etc/weir/sticky.secret"),
            .key("source_table_size", .integer(1...10_000_000), \.settings.sourceTableSize),
            .key("unconfirmed_timeout", .duration(within: .seconds(1) ... .seconds(3600)), \.settings.unconfirmedTimeout),
            .key("unconfirmed_table_size", .integer(1...10_000_000), \.settings.unconfirmedTableSize),
        ], defaults: { StickyState() }, oncePerConfiguration: true,
        neighbours: { settingsHomes + [stickyRule.asNeighbour] })
    }

    /// `secret`: an inline secret of at least 32 characters (`[sticky]`, `[group]`).
    static func secretKey<State: SecretState>() -> KeySpec<State> {
        KeySpec("secret") { value, site, reader, state in
            guard let text = Rule.string.check(value, site, &reader) else { return false }
            state.inlineLocation = site.location
            guard text.count >= StickySettings.minimumSecretLength else {
                reader.fail(site, "must be at least \(StickySettings.minimumSecretLength) characters, found "
                            + "\(text.count); generate one with: \(ValueRules.secretCommand) (or leave secret out: "
                            + "one is then generated at first start and kept in [global] state_dir)")
                return false
            }
            state.inlineSecret = text
            return true
        }
    }

    /// `secret_file`: a file holding the secret, read at load time (`[sticky]`, `[group]`).
    static func secretFileKey<State: SecretState>(example: String) -> KeySpec<State> {
        KeySpec("secret_file") { value, site, reader, state in
            guard let path = Rule.string.check(value, site, &reader) else { return false }
            state.fileLocation = site.location
            guard !path.isEmpty else {
                reader.fail(site, "must not be empty, e.g. secret_file = \"\(example)\"")
                return false
            }
            switch ValueRules.readSecretFile(path) {
            case .success(let secret):
                state.fileSecret = secret
                state.secretFilePath = path
                return true
            case .failure(let problem):
                reader.fail(site, problem.message)
                return false
            }
        }
    }

    static var discovery: TableSpec<DiscoveryState> {
        /// A path key: where it was written is kept whatever its value, an invalid one marks the table invalid.
        func path(_ name: String, _ keyPath: WritableKeyPath<DiscoverySettings, String?>,
                  example: String) -> KeySpec<DiscoveryState> {
            KeySpec(name) { value, site, reader, state in
                state.locations[name] = site.location
                guard let path = Rule.discoveryPath(example: example).check(value, site, &reader) else {
                    state.invalid = true
                    return false
                }
                state.settings[keyPath: keyPath] = path
                return true
            }
        }
        return TableSpec(header: "[discovery]", keys: [
            path("servers_path", \.serversPath, example: DiscoverySettings.defaultServersPath),
            path("assign_path", \.assignPath, example: DiscoverySettings.defaultAssignPath),
            path("alive_path", \.alivePath, example: DiscoverySettings.defaultAlivePath),
            .key("failed_exclusion", .duration(), \.settings.failedExclusion),
            .key("failed_clients", .integer(1...10_000_000), \.settings.failedClients),
        ], defaults: { DiscoveryState() }, oncePerConfiguration: true, neighbours: { settingsHomes })
    }

    // MARK: [[listener]], [listener.tls], [[listener.tls.sni]]

    static var listener: TableSpec<ListenerDraft> {
        TableSpec(header: "[[listener]]", keys: [
            declaredName("name", kind: "listener name", example: #"name = "public""#, \.listener.name),
            .key("address", .address(example: "127.0.0.1:8080", allowPortZero: true), \.listener.address,
                 missing: .required(#"address = "127.0.0.1:8080""#)),
            .key("max_connections", Rule.integer(maxConnectionsRange).some, \.maxConnections),
            .key("mode", .choice(kind: "mode", plural: "modes"), \.listener.mode),
            .key("https_redirect", Rule.integer(1...65535).some, \.listener.httpsRedirectPort),
            .key("proxy_protocol", .boolean, \.listener.proxyProtocol),
            .key("proxy_protocol_from", .networks, \.listener.proxyProtocolFrom),
            section("tls", listenerTLS, expected: "a table ([listener.tls]) with cert and key") { $0.listener.tls = $1 },
        ] + listenerHTTP2Keys, defaults: { ListenerDraft() }, neighbours: { [listenerTLS.asNeighbour] },
        check: { table, site, reader, draft in
            guard checkProxyProtocol(table, site, &reader, draft) else { return false }
            guard let port = draft.listener.httpsRedirectPort else { return true }
            if table["tls"] != nil {
                reader.fail(site.child("https_redirect"), "cannot be set on a TLS listener (this one has "
                            + "[listener.tls]); https_redirect sends a plain listener's requests to HTTPS: set it on "
                            + "a plain listener, e.g. one on port 80")
                return false
            }
            let address = draft.listener.address
            if address.port != 0, Int(address.port) == port {
                reader.fail(site.child("https_redirect"), "must not be this listener's own port (\(port)), which "
                            + "serves plain HTTP; name the port of the TLS listener, e.g. https_redirect = 443")
                return false
            }
            return true
        })
    }

    static var listenerTLS: TableSpec<ListenerTLS> {
        TableSpec(header: "[listener.tls]", keys: certificatePair(\.defaultCertificate) + [
            KeySpec("sni") { value, site, reader, tls in
                guard let tables = reader.tables(value, at: site, header: sni.header) else { return false }
                var valid = tables.count == value.array?.count ?? 0
                // Certificate path -> the key that first named it.
                var certificates: [String: String] = [:]
                let first = tls.defaultCertificate
                if !first.cert.isEmpty, !first.key.isEmpty { certificates[first.cert] = site.parent.child("cert").key }
                for (index, table) in tables {
                    let entry = site.element(index)
                    guard let pair = reader.read(table, sni, at: entry) else {
                        valid = false
                        continue
                    }
                    if let first = certificates[pair.cert] {
                        valid = false
                        reader.fail(entry.child("cert"), "certificate file \"\(pair.cert)\" is already used by "
                                    + "\(first); list each certificate once (the names in it choose it)")
                        continue
                    }
                    certificates[pair.cert] = entry.child("cert").key
                    tls.sniCertificates.append(pair)
                }
                return valid
            },
            .key("profile", .choice(kind: "profile", plural: "profiles"), \.profile),
            .key("ocsp", Rule.tlsFile(.ocspResponse).some, \.ocspFile),
            .key("hsts", Rule.text("hsts", form: ValueRules.hstsForm, empty: .blankRejected(
                "must not be empty; leave hsts out to add no Strict-Transport-Security header, or write e.g. "
                    + #"hsts = "max-age=63072000""#), valid: ValueRules.isValidHSTS).some, \.hsts),
            .key("ticket_rotation", .duration(minimum: ListenerTLS.minimumTicketRotation), \.ticketRotation),
            .key("handshake_timeout", .duration(), \.handshakeTimeout),
        ], defaults: { ListenerTLS(defaultCertificate: .init(cert: "", key: "")) },
        neighbours: { [listener.asNeighbour] })
    }

    static var sni: TableSpec<ListenerTLS.CertificatePair> {
        TableSpec(header: "[[listener.tls.sni]]", keys: certificatePair(\.self),
                  defaults: { .init(cert: "", key: "") },
                  neighbours: { [listenerTLS.asNeighbour, listener.asNeighbour] })
    }

    /// `cert` and `key`: both required (the message says so when only the other is set), each a readable PEM file.
    static func certificatePair<Target>(
        _ pair: WritableKeyPath<Target, ListenerTLS.CertificatePair>
    ) -> [KeySpec<Target>] {
        let certExample = "cert = \"\(ValueRules.TLSFile.certificate.example)\""
        let keyExample = "key = \"\(ValueRules.TLSFile.privateKey.example)\""
        return [
            .key("cert", .tlsFile(.certificate), pair.appending(path: \.cert), missing: Missing { table, _ in
                table["key"] != nil
                    ? "missing required key; key is set, so cert must name its certificate (with its chain), e.g. \(certExample)"
                    : "missing required key, e.g. \(certExample)"
            }),
            .key("key", .tlsFile(.privateKey), pair.appending(path: \.key), missing: Missing { table, _ in
                table["cert"] != nil
                    ? "missing required key; cert is set, so key must name its private key, e.g. \(keyExample)"
                    : "missing required key, e.g. \(keyExample)"
            }),
        ]
    }

    // MARK: [[pool]], [pool.health], [pool.tls], [[pool.server]]

    static var pool: TableSpec<Pool> {
        func noServers(_ pool: Pool) -> String {
            (pool.name.isEmpty ? "this pool" : "pool \"\(pool.name)\"")
                + " has no servers; add at least one [[pool.server]] with id and address after the [[pool]]"
        }
        return TableSpec(header: "[[pool]]", keys: [
            declaredName("name", kind: "pool name", example: #"name = "demo""#, \.name),
            .key("policy", .choice(kind: "policy", plural: "policies"), \.policy),
            .key("first_level", .level, \.firstLevel),
            .key("second_level", .level, \.secondLevel),
            .key("hash_key", .hashKey, \.hashKey),
            .key("retries", .integer(0...10), \.retries),
            .key("slow_start", .duration(allowZero: true), \.slowStart),
            .key("max_queue", .integer(0...100_000), \.maxQueue),
            .key("queue_timeout", .duration(), \.queueTimeout),
            .key("passive_failures", .integer(0...100), \.passiveFailures),
            .key("rewrite_body_types", .contentTypes, \.rewriteBodyTypes),
            .key("load_source", .choice(kind: "load source", plural: "load sources"), \.loadSource),
            .key("lend_level", Rule.level.some, \.lendLevel),
            .key("return_level", Rule.level.some, \.returnLevel),
            .key("lend_after", .duration(allowZero: true), \.lendAfter),
            .key("send_proxy", Rule.choice(kind: "PROXY protocol version", plural: "versions").some, \.sendProxy),
            .key("forwarded", .boolean, \.forwarded),
            section("health", health, expected: "a table ([pool.health])") { $0.health = $1.health },
            section("monitor", monitor, expected: "a table ([pool.monitor])") { $0.monitor = $1.monitor },
            KeySpec("tls") { value, site, reader, pool in
                if value.type == .bool, let enabled = value.bool {
                    pool.tls = enabled ? PoolTLS() : nil
                    return true
                }
                guard let table = value.table else {
                    let hint = value.type == .array ? "; write [pool.tls], not [[pool.tls]]" : ""
                    reader.fail(site, "expected a table ([pool.tls]) or a boolean (tls = true), found "
                                + "\(ValueRules.describe(value))\(hint)")
                    return false
                }
                guard let tls = reader.read(table, poolTLS, at: site) else { return false }
                pool.tls = tls
                return true
            },
            KeySpec("server", missing: Missing { _, pool in noServers(pool) }) { value, site, reader, pool in
                guard let (servers, valid) = reader.readArray(value, server, at: site) else { return false }
                if value.array?.isEmpty ?? false { reader.fail(site, noServers(pool)) }
                pool.servers = servers.map(\.1)
                return valid && !servers.isEmpty
            },
        ], defaults: { Pool(name: "", servers: []) },
        neighbours: { [server.asNeighbour, health.asNeighbour, poolTLS.asNeighbour, monitor.asNeighbour] },
        check: lendLevelsCheck)
    }

    static var health: TableSpec<HealthDraft> {
        healthSpec(header: "[pool.health]", neighbours: { [pool.asNeighbour] })
    }

    /// The keys of a health check (`[pool.health]`, `[peer.health]`).
    static func healthSpec(header: String, neighbours: @escaping () -> [Neighbour]) -> TableSpec<HealthDraft> {
        TableSpec(header: header, keys: [
            .key("type", .choice(kind: "health check type", plural: "types"), \.health.kind),
            KeySpec("interval") { value, site, reader, draft in
                guard let interval = Rule.duration(minimum: .milliseconds(100)).check(value, site, &reader) else {
                    return false
                }
                draft.health.interval = interval
                draft.intervalText = value.string
                return true
            },
            KeySpec("timeout") { value, site, reader, draft in
                guard let timeout = Rule.duration().check(value, site, &reader) else { return false }
                draft.health.timeout = timeout
                draft.timeoutText = value.string
                return true
            },
            .key("rise", .integer(1...100), \.health.rise),
            .key("fall", .integer(1...100), \.health.fall),
            .key("method", .text("method", form: ValueRules.methodForm, valid: ValueRules.isToken), \.health.method),
            .key("path", .text("path", form: ValueRules.healthPathForm, valid: ValueRules.isValidRequestPath),
                 \.health.path),
            .key("host", Rule.text("host", form: ValueRules.healthHostForm, empty: .rejected(
                "must not be empty; leave host out to send the server's address"),
                valid: ValueRules.isValidHostHeader).some, \.health.host),
            .key("expect_status", .expectStatus, \.health.expectStatus),
            .key("expect_body", Rule.nonEmpty("must not be empty; leave expect_body out to not check the body").some,
                 \.health.expectBody),
        ], defaults: { HealthDraft() }, neighbours: neighbours,
        check: { table, site, reader, draft in
            // Only when both are valid or default: an invalid one already has its error.
            let intervalOK = table["interval"] == nil || draft.intervalText != nil
            let timeoutOK = table["timeout"] == nil || draft.timeoutText != nil
            let health = draft.health
            guard intervalOK, timeoutOK, health.timeout >= health.interval else { return true }
            let interval = draft.intervalText.map { "\"\(ValueRules.clip($0))\"" }
                ?? "default \"\(ValueRules.formatDuration(health.interval))\""
            let timeout = draft.timeoutText.map { "\"\(ValueRules.clip($0))\"" }
                ?? "default \"\(ValueRules.formatDuration(health.timeout))\""
            let intervalKey = site.child("interval").key, timeoutKey = site.child("timeout").key
            if draft.timeoutText != nil || draft.intervalText == nil {
                reader.fail(site.child("timeout"), "must be shorter than \(intervalKey) (\(interval)), found \(timeout)")
            } else {
                reader.fail(site.child("interval"), "must be longer than \(timeoutKey) (\(timeout)), found \(interval)")
            }
            return false
        })
    }

    static var poolTLS: TableSpec<PoolTLS> {
        /// `client_cert` / `client_key`: set both or neither.
        func clientFile(_ name: String, other: String, _ kind: ValueRules.TLSFile, needs: String,
                        _ keyPath: WritableKeyPath<PoolTLS, String?>) -> KeySpec<PoolTLS> {
            .key(name, Rule.tlsFile(kind).some, keyPath, missing: Missing { table, _ in
                table[other] == nil ? nil : "missing; \(other) is set, so \(name) must name \(needs) (set both or "
                    + "neither), e.g. \(name) = \"\(kind.example)\""
            })
        }
        return TableSpec(header: "[pool.tls]", keys: [
            .key("enabled", .boolean, \.enabled),
            .key("ca_file", Rule.tlsFile(.caBundle).some, \.caFile),
            .key("verify", .boolean, \.verify),
            .key("server_name", Rule.text("server_name", form: ValueRules.serverNameForm, empty: .rejected(
                "must not be empty; leave server_name out to use the host of the server's public_url, or else its "
                    + "address"), normalized: ValueRules.normalizedServerName).some, \.serverName),
            clientFile("client_cert", other: "client_key", .clientCertificate, needs: "its certificate (with its chain)",
                       \.clientCert),
            clientFile("client_key", other: "client_cert", .clientKey, needs: "its private key", \.clientKey),
        ], defaults: { PoolTLS() }, neighbours: { [pool.asNeighbour] })
    }

    static var server: TableSpec<Server> {
        TableSpec(header: "[[pool.server]]", keys: [
            declaredName("id", kind: "server id", example: #"id = "demo-1""#,
                         suffix: " (server ids must be unique across all pools)", \.id),
            .key("address", .address(example: "127.0.0.1:9001", allowPortZero: false), \.address,
                 missing: .required(#"address = "127.0.0.1:9001""#)),
            .key("weight", .integer(1...256), \.weight),
            .key("capacity", .integer(1...Int.max), \.capacity),
            .key("public_url", Rule.text("URL", form: ValueRules.urlForm, valid: ValueRules.isValidPublicURL).some,
                 \.publicURL),
            .key("group", .integer(0...Int.max), \.group),
            .key("max_conns", Rule.integer(1...Int.max).some, \.maxConns),
            .key("can_serve", .servedPaths, \.canServe),
        ], defaults: { Server(id: "", address: noAddress) }, neighbours: { [pool.asNeighbour] })
    }

    // MARK: [[route]], [[route.sticky]]

    static var route: TableSpec<RouteDraft> {
        TableSpec(header: "[[route]]", keys: [
            declaredName("name", kind: "route name", example: #"name = "default""#, \.route.name),
            .key("pool", .name(example: #"pool = "demo""#), \.route.pool, missing: .required(#"pool = "demo""#)),
            .key("host", Rule.text("host", form: ValueRules.hostForm, empty: .rejected(
                "must not be empty; leave host out to match any host"), normalized: ValueRules.normalizedHost).some,
                 \.route.host),
            KeySpec("path") { value, site, reader, draft in
                guard let path = Rule.text("path", form: ValueRules.pathForm, valid: ValueRules.isValidPathPrefix)
                    .check(value, site, &reader) else {
                    draft.pathValid = false
                    return false
                }
                draft.route.pathPrefix = path
                return true
            },
            .key("listener", Rule.name(example: #"listener = "public""#).some, \.route.listener),
            KeySpec("spill") { value, site, reader, draft in
                guard let spill = Rule.name(example: #"spill = "overflow""#).check(value, site, &reader) else {
                    return false
                }
                draft.route.spill = spill
                guard spill != draft.route.pool else {
                    reader.fail(site, "spill pool \"\(spill)\" is the route's own pool; name another [[pool]] to take "
                                + "the overflow")
                    return false
                }
                return true
            },
            .key("spill_level", .level, \.route.spillLevel),
            .key("mode", Rule.choice(kind: "mode", plural: "modes").some, \.route.mode),
            .key("redirect_status", .oneOf(Route.redirectStatuses, "must be 302, 303, 307 or 308"),
                 \.route.redirectStatus),
            KeySpec("sticky") { value, site, reader, draft in
                guard let tables = reader.tables(value, at: site, header: stickyRule.header) else { return false }
                var valid = tables.count == value.array?.count ?? 0
                // Sticky path -> the key that first used it.
                var seen: [String: String] = [:]
                for (index, table) in tables {
                    let entry = site.element(index)
                    var rule = StickyRuleDraft(routePath: draft.pathValid ? draft.route.pathPrefix : nil)
                    guard reader.read(table, stickyRule, at: entry, into: &rule).valid else {
                        valid = false
                        continue
                    }
                    let path = rule.rule.path
                    if let first = seen[path] {
                        valid = false
                        reader.fail(entry.child("path"), "duplicate sticky path \"\(path)\" in this route; already "
                                    + "used by \(first)")
                        continue
                    }
                    seen[path] = entry.child("path").key
                    draft.route.sticky.append(rule.rule)
                }
                return valid
            },
        ], defaults: { RouteDraft() }, neighbours: { settingsHomes + [stickyRule.asNeighbour] })
    }

    static var stickyRule: TableSpec<StickyRuleDraft> {
        TableSpec(header: "[[route.sticky]]", keys: [
            KeySpec("path", missing: .required(#"path = "/banking/*""#)) { value, site, reader, draft in
                guard let text = Rule.text("sticky path", form: ValueRules.stickyPathForm,
                                           valid: ValueRules.isValidStickyPath).check(value, site, &reader) else {
                    return false
                }
                draft.rule.path = text
                let entry = draft.rule.entryPoint
                if let routePath = draft.routePath, !routePath.contains("*"), !entry.hasPrefix(routePath),
                   !routePath.hasPrefix(entry) {
                    reader.fail(site, "sticky path \"\(ValueRules.clip(text))\" is outside the route's path "
                                + "\"\(ValueRules.clip(routePath))\"; its requests never reach this route (move the "
                                + "rule to a [[route]] whose path covers it)")
                    return false
                }
                return true
            },
            .key("complete", .completePaths, \.rule.complete),
            .key("idle_timeout", .duration(minimum: .seconds(1)), \.rule.idleTimeout),
            .key("by", .choice(kind: "binding", plural: "bindings"), \.rule.by),
            .key("cookie", .text("cookie name", form: ValueRules.cookieNameForm, valid: ValueRules.isToken),
                 \.rule.cookieName),
        ], defaults: { StickyRuleDraft() }, neighbours: { [route.asNeighbour, sticky.asNeighbour] })
    }

    // MARK: Building blocks

    /// A required name that is declared as `kind` (unique across the files); it is stored even when it is a
    /// duplicate (so one mistake does not also show up as a dangling reference).
    static func declaredName<Target>(_ name: String, kind: String, example: String, suffix: String = "",
                                     _ keyPath: WritableKeyPath<Target, String>) -> KeySpec<Target> {
        KeySpec(name, missing: .required(example)) { value, site, reader, target in
            guard let text = Rule.name(example: example).check(value, site, &reader) else { return false }
            target[keyPath: keyPath] = text
            return reader.declare(text, kind: kind, at: site, suffix: suffix)
        }
    }

    /// A key holding a sub-table read by `spec` (e.g. `[pool.health]`); anything else is
    /// `expected <expected>, found ...` (with a hint when it was written as an array of tables).
    static func section<Target, Section>(_ name: String, _ spec: TableSpec<Section>, expected: String,
                                         _ set: @escaping (inout Target, Section) -> Void) -> KeySpec<Target> {
        KeySpec(name) { value, site, reader, target in
            guard let table = value.table else {
                let hint = value.type == .array ? "; write \(spec.header), not [\(spec.header)]" : ""
                reader.fail(site, "expected \(expected), found \(ValueRules.describe(value))\(hint)")
                return false
            }
            guard let section = reader.read(table, spec, at: site) else { return false }
            set(&target, section)
            return true
        }
    }
}

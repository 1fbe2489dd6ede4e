import Testing
import WeirBalance
import WeirConfig

/// A stand-in for the gateway's sticky services: a keyed (not cryptographic) MAC, numbered session
/// ids, and a register that is a dictionary the test applies verdicts' changes to.
final class FakeSticky: StickyServices {
    var register: [String: Int] = [:]
    var sessions = 0

    func mac(_ message: [UInt8]) -> [UInt8] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var out: [UInt8] = []
        for round in 0..<4 {
            for b in message { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h ^= UInt64(round)
            for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8((h >> UInt64(shift)) & 0xff)) }
        }
        return out
    }

    func newSession() -> String {
        sessions += 1
        return "s\(sessions)"
    }

    func pinnedServer(for key: String, nowMs: Int64) -> Int? { register[key] }

    func users(nowMs: Int64) -> [Int: Int] {
        var counts: [Int: Int] = [:]
        for server in register.values { counts[server, default: 0] += 1 }
        return counts
    }

    func apply(_ change: RegisterChange?) {
        switch change {
        case .touch(let key, let server, _, _, _)?: register[key] = server
        case .remove(let key)?: register[key] = nil
        case nil: break
        }
    }
}

/// One gateway's view for `Decision.answer`: a snapshot, its policy state, the fake services, a
/// manual monotonic clock and a wall clock in milliseconds that the test moves.
final class Asker {
    let snapshot: RoutingSnapshot
    var state: PolicyState
    let services = FakeSticky()
    let clock = ManualClock()
    var wallMs: Int64 = 1_700_000_000_000

    init(_ configuration: WeirConfiguration) {
        snapshot = RoutingSnapshot(configuration: configuration, clock: clock)
        state = PolicyState(snapshot: snapshot)
    }

    /// Asks for a request given as strings; applies the register change of the verdict, like the gateway.
    func ask(_ path: String, host: String? = nil, listener: Int = 0, cookie: String? = nil, client: String = "192.0.2.1",
             excluded: [Int] = [], mode: Mode = .proxy, secure: Bool = false) -> Verdict {
        let store = ByteStore()
        let cookieBytes = cookie.map { store.bytes($0) }
        let facts = RequestFacts(host: host.map { store.bytes($0) }, path: store.bytes(path), listener: listener,
                                 excluded: excluded, clientAddress: store.bytes(client),
                                 fields: cookieBytes.map { AnyCookie($0) }, listenerMode: mode, secure: secure)
        let verdict = withExtendedLifetime(store) {
            Decision.answer(facts, snapshot: snapshot, state: &state, services: services,
                            now: clock.nowNanoseconds, wallMs: wallMs)
        }
        switch verdict {
        case .forward(_, let pin), .redirect(_, _, let pin): services.apply(pin?.change)
        case .local(.assignment(let assignment)): services.apply(assignment.register)
        default: break
        }
        return verdict
    }

    /// The server id and session of a pin token, checked with the fake MAC.
    func pin(_ token: String, scope: String = "/bank/*") -> PinToken.Pin? {
        try? PinToken.decode(Array(token.utf8), scope: scope, now: wallMs / 1000, mac: services.mac).get()
    }
}

/// The token in a "weir_pin=TOKEN; ..." Set-Cookie value.
func token(_ verdict: Verdict) -> String? {
    guard case .forward(_, let pin?) = verdict, let cookie = pin.setCookie else { return nil }
    return String(cookie.dropFirst("weir_pin=".count).prefix { $0 != ";" })
}

let bankRule = StickyRule(path: "/bank/*", complete: ["/bank/logout"], idleTimeout: .seconds(600))

func bankConfiguration(by: StickyRule.Binding = .cookie, discovery: DiscoverySettings = DiscoverySettings()) -> WeirConfiguration {
    var rule = bankRule
    rule.by = by
    return WeirConfiguration(
        listeners: [Listener(name: "public", address: SocketAddress(host: "127.0.0.1", port: 8080))],
        pools: [pool("p", .roundRobin, [server("a", port: 1), server("b", port: 2), server("c", port: 3)])],
        routes: [Route(name: "bank", pathPrefix: "/bank/", pool: "p", sticky: [rule]), Route(name: "all", pool: "p")],
        discovery: discovery)
}

@Suite struct HTTPSRedirectAnswerTests {
    func asker(port: Int) -> Asker {
        Asker(WeirConfiguration(
            listeners: [Listener(name: "plain", address: SocketAddress(host: "127.0.0.1", port: 8080), httpsRedirectPort: port),
                        Listener(name: "tls", address: SocketAddress(host: "127.0.0.1", port: 8443))],
            pools: [pool("p", .roundRobin, [server("a", port: 1)])],
            routes: [Route(name: "only", host: "example.com", pool: "p")]))
    }

    @Test func aPlainListenerWithHTTPSRedirectSendsEveryRequestToTheSameHostAndTarget() {
        let gateway = asker(port: 8443)
        #expect(gateway.ask("/a/b?c=1&d", host: "example.com") == .httpsRedirect(location: "https://example.com:8443/a/b?c=1&d"))
        // Before discovery and before routing: a discovery path, an unrouted host, no host at all.
        #expect(gateway.ask("/.well-known/weir/servers", host: "example.com")
                == .httpsRedirect(location: "https://example.com:8443/.well-known/weir/servers"))
        #expect(gateway.ask("/x", host: "other.org") == .httpsRedirect(location: "https://other.org:8443/x"))
        #expect(gateway.ask("/", host: nil) == .httpsRedirect(location: "https://localhost:8443/"))
        #expect(gateway.ask("/", host: "") == .httpsRedirect(location: "https://localhost:8443/"))
        #expect(gateway.ask("/", host: "[::1]") == .httpsRedirect(location: "https://[::1]:8443/"))
        // The other listener is routed as usual.
        #expect(gateway.ask("/x", host: "example.com", listener: 1) == .forward(server: 0))
        #expect(gateway.ask("/x", host: "other.org", listener: 1) == .reject(status: 404, reason: "no route for this host and path"))
    }

    @Test func port443IsLeftOutOfTheLocation() {
        #expect(asker(port: 443).ask("/login?next=/", host: "Example.COM") == .httpsRedirect(location: "https://Example.COM/login?next=/"))
    }
}

@Suite struct RouteAnswerTests {
    @Test func noRouteIs404AndARouteWithoutStickyRulesCarriesNoPin() {
        let gateway = Asker(configuration(pools: [pool("p", .roundRobin, [server("a", port: 1), server("b", port: 2)])],
                                          routes: [Route(name: "r", host: "example.com", pool: "p")]))
        #expect(gateway.ask("/", host: "other.org") == .reject(status: 404, reason: "no route for this host and path"))
        #expect(gateway.ask("/", host: "example.com") == .forward(server: 0, pin: nil))
        #expect(gateway.ask("/", host: "example.com", mode: .redirect) == .redirect(server: 1, status: 307, pin: nil))
        gateway.snapshot.servers[0].setHealth(up: false, now: gateway.clock.nowNanoseconds)
        gateway.snapshot.servers[1].setHealth(up: false, now: gateway.clock.nowNanoseconds)
        #expect(gateway.ask("/", host: "example.com") == .reject(status: 503, reason: "no server available in pool p"))
    }

    @Test func aFullServerQueues() {
        let gateway = Asker(configuration(pools: [pool("p", .roundRobin, [server("a", port: 1, maxConns: 1)])],
                                          routes: [Route(name: "r", pool: "p")]))
        gateway.snapshot.servers[0].requestStarted()
        #expect(gateway.ask("/") == .queue(pool: 0))
    }
}

@Suite struct DiscoveryAnswerTests {
    @Test func theServerListNamesEveryServerOfThePoolAndItsSpillPoolWithUsers() {
        var publicServer = server("b", port: 2, group: 1)
        publicServer.publicURL = "https://b.example"
        let gateway = Asker(WeirConfiguration(
            listeners: [Listener(name: "public", address: SocketAddress(host: "127.0.0.1", port: 8080))],
            pools: [pool("p", .roundRobin, [server("a", port: 1), publicServer]), pool("q", .roundRobin, [server("c", port: 3, capacity: 10)])],
            routes: [Route(name: "bank", pathPrefix: "/bank/", pool: "p", spill: "q"), Route(name: "all", pool: "q")]))
        gateway.services.register = ["s1": 0, "s2": 0, "s3": 2]
        gateway.snapshot.servers[0].requestStarted()
        gateway.snapshot.servers[2].requestStarted()
        gateway.snapshot.servers[1].setAdminCondition(.drain)
        let expected = Verdict.local(.serverList([
            ServerListEntry(id: "a", publicURL: "http://127.0.0.1:1", available: true, load: 0.01, users: 3, group: 0),
            ServerListEntry(id: "b", publicURL: "https://b.example", available: false, load: 0, users: 0, group: 1),
            ServerListEntry(id: "c", publicURL: "http://127.0.0.1:3", available: true, load: 0.1, users: 2, group: 0),
        ]))
        #expect(gateway.ask("/.well-known/weir/servers?path=/bank/x") == expected)
        #expect(gateway.ask("/.well-known/weir/servers?x=1&path=%2Fbank%2F") == expected)
        // Without path= it is the route of "/": pool q only.
        #expect(gateway.ask("/.well-known/weir/servers") == .local(.serverList([
            ServerListEntry(id: "c", publicURL: "http://127.0.0.1:3", available: true, load: 0.1, users: 2, group: 0),
        ])))
    }

    @Test func anAssignmentPicksAServerAndIssuesAPinForTheRoutesStickyRule() throws {
        let gateway = Asker(bankConfiguration())
        guard case .local(.assignment(let first)) = gateway.ask("/.well-known/weir/assign?path=/bank/") else {
            Issue.record("no assignment"); return
        }
        let token = try #require(first.token)
        #expect(first == Assignment(server: 0, id: "a", publicURL: "http://127.0.0.1:1", token: token, cookie: "weir_pin",
                                    lifetimeSeconds: 600, register: .touch(key: "s1", server: 0, path: "/bank/*", idleMs: 600_000)))
        #expect(gateway.pin(token) == PinToken.Pin(serverID: "a", session: "s1", expires: gateway.wallMs / 1000 + 600))
        // The pin is honoured by the next request of the transaction.
        #expect(gateway.ask("/bank/account", cookie: token) == .forward(server: 0, pin: PinCommit(
            setCookie: "weir_pin=\(gateway.pinToken(server: "a", session: "s1"))" + "; Max-Age=600; Path=/bank/; HttpOnly; SameSite=Lax",
            change: .touch(key: "s1", server: 0, path: "/bank/*", idleMs: 600_000, presented: true))))
        // A route without sticky rules: the server only; assignments balance like requests.
        #expect(gateway.ask("/.well-known/weir/assign?path=/other") == .local(.assignment(
            Assignment(server: 1, id: "b", publicURL: "http://127.0.0.1:2"))))
    }

    @Test func anAssignmentInARedirectModeRouteStillNamesTheServer() {
        let gateway = Asker(configuration(pools: [pool("p", .roundRobin, [server("a", port: 1)])],
                                          routes: [Route(name: "r", pool: "p", mode: .redirect)]))
        #expect(gateway.ask("/.well-known/weir/assign") == .local(.assignment(Assignment(server: 0, id: "a", publicURL: "http://127.0.0.1:1"))))
    }

    @Test func badQueriesAreRejectedWithTheirReason() {
        let gateway = Asker(configuration(pools: [pool("p", .roundRobin, [server("a", port: 1)])],
                                          routes: [Route(name: "r", pathPrefix: "/bank", pool: "p")]))
        for endpoint in ["servers", "assign"] {
            #expect(gateway.ask("/.well-known/weir/\(endpoint)?path=bank") == .reject(status: 400, reason: "path= must start with /"))
            #expect(gateway.ask("/.well-known/weir/\(endpoint)?path=") == .reject(status: 400, reason: "path= must start with /"))
            #expect(gateway.ask("/.well-known/weir/\(endpoint)?path=/nowhere") == .reject(status: 404, reason: "no route for /nowhere"))
            #expect(gateway.ask("/.well-known/weir/\(endpoint)") == .reject(status: 404, reason: "no route for /"))
        }
        gateway.snapshot.servers[0].setHealth(up: false, now: gateway.clock.nowNanoseconds)
        #expect(gateway.ask("/.well-known/weir/assign?path=/bank") == .reject(status: 503, reason: "no server available for /bank"))
    }

    @Test func endpointsTurnedOffOrOtherPathsAreRoutedAsUsual() {
        let gateway = Asker(bankConfiguration(discovery: DiscoverySettings(serversPath: nil, assignPath: "/where")))
        #expect(gateway.ask("/.well-known/weir/servers") == .forward(server: 0))
        #expect(gateway.ask("/where/else") == .forward(server: 1))
        #expect(gateway.ask("/where?path=/") == .local(.assignment(Assignment(server: 2, id: "c", publicURL: "http://127.0.0.1:3"))))
        let off = Asker(bankConfiguration(discovery: DiscoverySettings(serversPath: nil, assignPath: nil)))
        #expect(off.ask("/.well-known/weir/assign") == .forward(server: 0))
    }
}

extension Asker {
    /// The token this gateway issues for `server` and `session` now.
    func pinToken(server id: String, session: String) -> String {
        PinToken.encode(PinToken.Pin(serverID: id, session: session, expires: wallMs / 1000 + 600), scope: "/bank/*", mac: services.mac)
    }
}

@Suite struct StickyAnswerTests {
    let attributes = "; Max-Age=600; Path=/bank/; HttpOnly; SameSite=Lax"

    @Test func theEntryIsBalancedAndPinsTheTransactionToItsServer() {
        let gateway = Asker(bankConfiguration())
        #expect(gateway.ask("/bank/") == .forward(server: 0, pin: PinCommit(
            setCookie: "weir_pin=\(gateway.pinToken(server: "a", session: "s1"))\(attributes)",
            change: .touch(key: "s1", server: 0, path: "/bank/*", idleMs: 600_000))))
        let pin = gateway.pinToken(server: "a", session: "s1")
        // Round-robin would go on to b and c: the pin wins, and keeps its session.
        for _ in 0..<3 {
            gateway.wallMs += 1_000
            #expect(gateway.ask("/bank/account?x=1", cookie: pin) == .forward(server: 0, pin: PinCommit(
                setCookie: "weir_pin=\(gateway.pinToken(server: "a", session: "s1"))\(attributes)",
                change: .touch(key: "s1", server: 0, path: "/bank/*", idleMs: 600_000, presented: true))))
        }
        #expect(gateway.services.sessions == 1)
        // Paths outside the rule are balanced and carry no pin.
        #expect(gateway.ask("/other", cookie: pin) == .forward(server: 1, pin: nil))
        // The entry again: balanced as usual, the session kept.
        #expect(gateway.ask("/bank/", cookie: pin) == .forward(server: 2, pin: PinCommit(
            setCookie: "weir_pin=\(gateway.pinToken(server: "c", session: "s1"))\(attributes)",
            change: .touch(key: "s1", server: 2, path: "/bank/*", idleMs: 600_000, presented: true))))
    }

    @Test func aSecureClientGetsASecureCookie() {
        let gateway = Asker(bankConfiguration())
        guard case .forward(_, let pin?) = gateway.ask("/bank/", secure: true) else { Issue.record("no pin"); return }
        #expect(pin.setCookie?.hasSuffix("\(attributes); Secure") == true)
    }

    @Test func aPinToAServerThatIsDownMovesTheTransactionAndCountsIt() {
        let gateway = Asker(bankConfiguration())
        let pin = gateway.pinToken(server: "b", session: "s9")
        gateway.snapshot.servers[1].setHealth(up: false, now: gateway.clock.nowNanoseconds)
        let moved = gateway.ask("/bank/account", cookie: pin)
        guard case .forward(let home, _) = moved, home != 1 else { Issue.record("not moved: \(moved)"); return }
        let id = ["a", "b", "c"][home]
        #expect(moved == .forward(server: home, pin: PinCommit(
            setCookie: "weir_pin=\(gateway.pinToken(server: id, session: "s9"))\(attributes)",
            change: .touch(key: "s9", server: home, path: "/bank/*", idleMs: 600_000, presented: true), moved: true)))
        // The new pin holds; a draining server keeps its pinned transactions.
        let next = token(moved)!
        gateway.snapshot.servers[home].setAdminCondition(.drain)
        #expect(gateway.ask("/bank/more", cookie: next) == .forward(server: home, pin: PinCommit(
            setCookie: "weir_pin=\(gateway.pinToken(server: id, session: "s9"))\(attributes)",
            change: .touch(key: "s9", server: home, path: "/bank/*", idleMs: 600_000, presented: true))))
        // Maintenance moves it too, to the one server left.
        gateway.snapshot.servers[home].setAdminCondition(.maint)
        guard case .forward(let server, let commit?) = gateway.ask("/bank/more", cookie: next) else { Issue.record("no forward"); return }
        #expect(server == 2 - home && commit.moved && commit.change == .touch(key: "s9", server: 2 - home, path: "/bank/*", idleMs: 600_000, presented: true))
    }

    @Test func aRetryElsewhereMovesThePinButDoesNotCountARejectionTwice() {
        let gateway = Asker(bankConfiguration())
        let pin = gateway.pinToken(server: "b", session: "s9")
        guard case .forward(let server, let commit?) = gateway.ask("/bank/account", cookie: pin, excluded: [1]) else {
            Issue.record("no forward"); return
        }
        #expect(server != 1 && commit.moved && commit.rejected == nil)
        let forged = "1.Yg.s9.99999999999.AAAAAAAAAAAAAAAAAAAAAA"
        guard case .forward(_, let first?) = gateway.ask("/bank/account", cookie: forged),
              case .forward(let first2, let retry?) = gateway.ask("/bank/account", cookie: forged, excluded: [0]) else {
            Issue.record("no forwards"); return
        }
        #expect(first.rejected == .tampered && retry.rejected == nil && first2 != 0)
    }

    @Test func aCompletePathGoesToThePinnedServerAndFreesTheTransaction() {
        let gateway = Asker(bankConfiguration())
        _ = gateway.ask("/bank/")
        #expect(gateway.services.register == ["s1": 0])
        let pin = gateway.pinToken(server: "a", session: "s1")
        #expect(gateway.ask("/bank/logout", cookie: pin) == .forward(server: 0, pin: PinCommit(
            setCookie: "weir_pin=; Max-Age=0; Path=/bank/; HttpOnly; SameSite=Lax", change: .remove(key: "s1"))))
        #expect(gateway.services.register.isEmpty)
        // Without a pin, a complete path is balanced, and there is nothing to remove.
        #expect(gateway.ask("/bank/logout") == .forward(server: 1, pin: PinCommit(
            setCookie: "weir_pin=; Max-Age=0; Path=/bank/; HttpOnly; SameSite=Lax")))
    }

    @Test func forgedExpiredAndUnknownPinsAreRejectedAndBalancedAsUsual() {
        let gateway = Asker(bankConfiguration())
        let genuine = gateway.pinToken(server: "c", session: "s9")
        var forged = Array(genuine.utf8)
        forged[2] = forged[2] == UInt8(ascii: "Z") ? UInt8(ascii: "Y") : UInt8(ascii: "Z")   // another server id, same MAC
        let unknown = PinToken.encode(PinToken.Pin(serverID: "zzz", session: "s9", expires: gateway.wallMs / 1000 + 600),
                                      scope: "/bank/*", mac: gateway.services.mac)
        let otherScope = PinToken.encode(PinToken.Pin(serverID: "c", session: "s9", expires: gateway.wallMs / 1000 + 600),
                                         scope: "/shop/*", mac: gateway.services.mac)
        let cases: [(String, PinToken.Rejection)] = [
            (String(decoding: forged, as: UTF8.self), .tampered), (otherScope, .tampered),
            ("garbage", .malformed), (unknown, .unknownServer),
        ]
        for (index, (cookie, why)) in cases.enumerated() {
            // Round-robin order: the pin to c is never honoured.
            #expect(gateway.ask("/bank/account", cookie: cookie) == .forward(server: index % 3, pin: PinCommit(
                setCookie: "weir_pin=\(gateway.pinToken(server: ["a", "b", "c"][index % 3], session: "s\(index + 1)"))\(attributes)",
                change: .touch(key: "s\(index + 1)", server: index % 3, path: "/bank/*", idleMs: 600_000), rejected: why)))
        }
        // Expiry is a wall time: the same genuine pin is honoured until it expires.
        #expect(gateway.ask("/bank/account", cookie: genuine) == .forward(server: 2, pin: PinCommit(
            setCookie: "weir_pin=\(gateway.pinToken(server: "c", session: "s9"))\(attributes)",
            change: .touch(key: "s9", server: 2, path: "/bank/*", idleMs: 600_000, presented: true))))
        gateway.wallMs += 600_000
        guard case .forward(_, let expired?) = gateway.ask("/bank/account", cookie: genuine) else { Issue.record("no pin"); return }
        #expect(expired.rejected == .expired && expired.change == .touch(key: "s5", server: 1, path: "/bank/*", idleMs: 600_000))
        // A bad pin at the entry point is no rejection: the entry is balanced anyway.
        guard case .forward(_, let entry?) = gateway.ask("/bank/", cookie: "garbage") else { Issue.record("no pin"); return }
        #expect(entry.rejected == nil)
    }

    @Test func redirectModeCarriesThePinToo() {
        let gateway = Asker(bankConfiguration())
        let pin = gateway.pinToken(server: "b", session: "s9")
        #expect(gateway.ask("/bank/account", cookie: pin, mode: .redirect) == .redirect(server: 1, status: 307, pin: PinCommit(
            setCookie: "weir_pin=\(gateway.pinToken(server: "b", session: "s9"))\(attributes)",
            change: .touch(key: "s9", server: 1, path: "/bank/*", idleMs: 600_000, presented: true))))
    }

    @Test func sourcePinsComeFromTheRegister() {
        let gateway = Asker(bankConfiguration(by: .source))
        let key = "/bank/*|192.0.2.1"
        #expect(gateway.ask("/bank/") == .forward(server: 0, pin: PinCommit(
            change: .touch(key: key, server: 0, path: "/bank/*", idleMs: 600_000))))
        for _ in 0..<2 {
            #expect(gateway.ask("/bank/account") == .forward(server: 0, pin: PinCommit(
                change: .touch(key: key, server: 0, path: "/bank/*", idleMs: 600_000, presented: true))))
        }
        // Another client is not pinned by it; the entry rebalances the first one.
        #expect(gateway.ask("/bank/account", client: "192.0.2.2") == .forward(server: 1, pin: PinCommit(
            change: .touch(key: "/bank/*|192.0.2.2", server: 1, path: "/bank/*", idleMs: 600_000))))
        gateway.snapshot.servers[0].setHealth(up: false, now: gateway.clock.nowNanoseconds)
        guard case .forward(let home, let moved?) = gateway.ask("/bank/account"), home != 0 else { Issue.record("not moved"); return }
        #expect(moved == PinCommit(change: .touch(key: key, server: home, path: "/bank/*", idleMs: 600_000, presented: true), moved: true))
        gateway.snapshot.servers[0].setHealth(up: true, now: gateway.clock.nowNanoseconds)
        #expect(gateway.ask("/bank/account") == .forward(server: home, pin: PinCommit(
            change: .touch(key: key, server: home, path: "/bank/*", idleMs: 600_000, presented: true))))
        #expect(gateway.ask("/bank/logout") == .forward(server: home, pin: PinCommit(change: .remove(key: key))))
        #expect(gateway.services.register == ["/bank/*|192.0.2.2": 1])
    }
}

@Suite struct QueryStringTests {
    @Test func valuesArePercentDecodedWhenTheEncodingIsValid() {
        #expect(QueryString.value("path", in: "a=1&path=%2Fbank%2F%C3%A9") == "/bank/é")
        #expect(QueryString.value("path", in: "path") == "")
        #expect(QueryString.value("path", in: "paths=1") == nil)
        #expect(QueryString.value("path", in: "path=/a+b&path=/c") == "/a+b")
        #expect(QueryString.value("path", in: "path=/100%") == "/100%")
        #expect(QueryString.value("path", in: "path=/%zz") == "/%zz")
        #expect(QueryString.value("path", in: "path=/%FF") == "/%FF")
    }
}

/// A test request whose every cookie name has the same value.
private final class AnyCookie: RequestFieldSource {
    let value: UnsafeRawBufferPointer
    init(_ value: UnsafeRawBufferPointer) { self.value = value }
    func header(_ lowercasedName: String) -> UnsafeRawBufferPointer? { nil }
    func cookie(_ name: String) -> UnsafeRawBufferPointer? { value }
}

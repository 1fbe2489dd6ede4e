import Foundation
import Testing
import WeirBalance
@testable import WeirConfig
@testable import WeirGateway

/// The admin API's authentication (issue 13): the token for state changes, open reads on loopback only,
/// the dashboard's login cookie and its cross-site protection.
@Suite struct AdminAuthTests {
    private static let token = "0123456789abcdef0123456789abcdef-admin"
    private let conf = """
        [[listener]]
        name = "public"
        address = "127.0.0.1:8080"
        [[pool]]
        name = "web"
        [[pool.server]]
        id = "w1"
        address = "192.0.2.1:80"
        [[route]]
        name = "default"
        pool = "web"
        [admin]
        token = "\(AdminAuthTests.token)"

        """

    private func api(openReads: Bool = true) throws -> AdminAPI {
        let configuration = try ConfigLoader.parse(files: [(name: "a.toml", contents: conf)])
        let generation = SharedGeneration(number: 1, configuration: configuration, snapshot: RoutingSnapshot(configuration: configuration),
                                          tls: try TLSSetup(configuration), modes: ListenerModes(configuration.listeners), peer: nil,
                                          slots: configuration.listeners.map(ListenerSlot.init))
        var api = AdminAPI(generation: { generation }, stats: GatewayStats(),
                           sticky: StickyContext(key: Array(repeating: 1, count: 32), capacity: 10),
                           clock: { 0 }, wallMs: { 0 }, log: { _ in })
        api.openReads = openReads
        return api
    }

    private var bearer: String { "Bearer \(Self.token)" }

    @Test func aStateChangeWithoutTheTokenIs401AndChangesNothing() throws {
        let api = try api()
        let answer = api.answer(AdminRequest(method: "POST", target: "/servers/w1/drain"))
        #expect(answer.status == 401)
        #expect(answer.headers.contains { $0 == ("WWW-Authenticate", "Bearer realm=\"weir\"") })
        #expect(String(decoding: answer.body, as: UTF8.self).hasPrefix("unauthorized: POST needs the admin token"))
        #expect(api.snapshot.servers[0].condition == .up)
        #expect(api.answer(AdminRequest(method: "POST", target: "/servers/w1/drain", authorization: "Bearer wrong")).status == 401)
        #expect(api.answer(AdminRequest(method: "POST", target: "/servers/w1/drain", authorization: "Basic eDp5")).status == 401)
        #expect(api.snapshot.servers[0].condition == .up)
    }

    @Test func theBearerTokenAllowsAStateChangeWhateverTheOrigin() throws {
        let api = try api()
        #expect(api.answer(AdminRequest(method: "POST", target: "/servers/w1/drain", authorization: bearer)).status == 200)
        #expect(api.snapshot.servers[0].condition == .drain)
    }

    @Test func readsAreOpenOnLoopbackOnlyAndTheDashboardPageAlways() throws {
        #expect(try api(openReads: true).answer(AdminRequest(method: "GET", target: "/status")).status == 200)
        let remote = try api(openReads: false)
        #expect(remote.answer(AdminRequest(method: "GET", target: "/status")).status == 401)
        #expect(remote.answer(AdminRequest(method: "GET", target: "/status", authorization: bearer)).status == 200)
        #expect(remote.answer(AdminRequest(method: "GET", target: "/")).status == 200)
    }

    /// Logs in and returns the cookie header to send back.
    private func login(_ api: AdminAPI) -> String? {
        let answer = api.answer(AdminRequest(method: "POST", target: "/login", contentType: "application/x-www-form-urlencoded",
                                             host: "127.0.0.1:9090", body: Array("token=\(Self.token)".utf8)))
        guard answer.status == 200, let set = answer.headers.first(where: { $0.0 == "Set-Cookie" })?.1 else { return nil }
        #expect(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"))
        return String(set.split(separator: ";")[0])
    }

    @Test func theLoginCookieWithTheCSRFHeaderAllowsAChangeFromTheOwnOrigin() throws {
        let api = try api()
        let wrong = api.answer(AdminRequest(method: "POST", target: "/login", body: Array("token=nope".utf8)))
        #expect(wrong.status == 401 && wrong.headers.allSatisfy { $0.0 != "Set-Cookie" })
        let cookie = try #require(login(api))
        let own = AdminRequest(method: "POST", target: "/servers/w1/maint", cookie: cookie, origin: "http://127.0.0.1:9090",
                               secFetchSite: "same-origin", host: "127.0.0.1:9090", csrf: "1")
        #expect(api.answer(own).status == 200)
        #expect(api.snapshot.servers[0].condition == .maint)
        var noHeader = own
        noHeader.csrf = nil
        #expect(api.answer(noHeader).status == 403)
        let session = String(decoding: api.answer(AdminRequest(method: "GET", target: "/session", cookie: cookie)).body, as: UTF8.self)
        #expect(session == #"{"authenticated":true,"reads_open":true}"# + "\n")
    }

    @Test func aCrossSiteFormPostWithTheCookieIs403AndChangesNothing() throws {
        let api = try api()
        let cookie = try #require(login(api))
        let evil = AdminRequest(method: "POST", target: "/servers/w1/drain", cookie: cookie, origin: "http://evil.example",
                                contentType: "application/x-www-form-urlencoded", host: "127.0.0.1:9090", csrf: "1")
        #expect(api.answer(evil).status == 403)
        var fetchSite = evil
        fetchSite.origin = nil
        fetchSite.secFetchSite = "cross-site"
        #expect(api.answer(fetchSite).status == 403)
        #expect(api.snapshot.servers[0].condition == .up)
    }

    @Test func aForgedCookieIs401() throws {
        let api = try api()
        let forged = AdminRequest(method: "POST", target: "/servers/w1/drain", cookie: "weir_admin=\(String(repeating: "0", count: 64))",
                                  host: "127.0.0.1:9090", csrf: "1")
        #expect(api.answer(forged).status == 401)
    }

    @Test func withoutAnyTokenNothingChanges() throws {
        var api = try api()
        api.startToken = []
        let empty = AdminAuth(token: [], openReads: true)
        #expect(empty.check(AdminRequest(method: "POST", target: "/reload", authorization: "Bearer ")) != nil)
        #expect(empty.check(AdminRequest(method: "POST", target: "/login", body: Array("token=".utf8)))?.status == 401)
    }

    @Test func aGeneratedTokenIsKeptWithMode0600AndReused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weir-admin-token-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var configuration = try ConfigLoader.parse(files: [(name: "a.toml", contents: conf)])
        configuration.admin.token = nil
        configuration.global.stateDirectory = dir
        let first = try AdminToken.resolve(configuration, log: { _ in })
        #expect(first.count == 64)
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/admin.token")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(try AdminToken.resolve(configuration, log: { _ in }) == first)
    }
}

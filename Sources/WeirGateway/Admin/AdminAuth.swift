import Foundation
import WeirConfig
import WeirHTTP
import WeirIO

/// What the admin API sees of one request: the request line, the few head fields that
/// authentication and the login form need, and the body (at most `AdminServer`'s 64 KiB cap).
struct AdminRequest {
    var method: String
    var target: String
    var authorization: String? = nil
    var cookie: String? = nil
    var origin: String? = nil
    var secFetchSite: String? = nil
    var contentType: String? = nil
    var host: String? = nil
    /// `X-Weir-CSRF`: the header only same-origin scripts can set (a form cannot, and Weir grants
    /// no CORS preflight).
    var csrf: String? = nil
    var body: [UInt8] = []

    /// The path of the target, without the query.
    var path: String { String(target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "/") }

    /// The fields of `head` that the admin API reads; `body` as read.
    init(head: RequestHead, body: [UInt8]) {
        func field(_ name: String) -> String? { head.value(of: name).map { head.string($0) } }
        self.init(method: head.methodString, target: head.targetString, authorization: field("authorization"),
                  cookie: field("cookie"), origin: field("origin"), secFetchSite: field("sec-fetch-site"),
                  contentType: field("content-type"), host: field("host"), csrf: field("x-weir-csrf"), body: body)
    }

    init(method: String, target: String, authorization: String? = nil, cookie: String? = nil, origin: String? = nil,
         secFetchSite: String? = nil, contentType: String? = nil, host: String? = nil, csrf: String? = nil,
         body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.authorization = authorization
        self.cookie = cookie
        self.origin = origin
        self.secFetchSite = secFetchSite
        self.contentType = contentType
        self.host = host
        self.csrf = csrf
        self.body = body
    }

    /// The value of cookie `name`, or nil.
    func cookieValue(_ name: String) -> String? {
        guard let cookie else { return nil }
        for pair in cookie.split(separator: ";") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == name {
                return kv[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    /// The token of `Authorization: Bearer <token>`, or nil when there is no such header.
    var bearerToken: String? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return "" }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }
}

/// Who may do what on the admin listener (README, "Admin API security"):
///
/// - state changes (any method but GET and HEAD) need the token, as `Authorization: Bearer <token>`
///   (the CLI) or as the dashboard's session cookie; a cookie-authenticated change is refused (403)
///   when `Origin` is another origin or `Sec-Fetch-Site` is `cross-site`, and without `X-Weir-CSRF`;
/// - reads (GET, HEAD) are open on a loopback listener; elsewhere they need the token or cookie
///   too, except `GET /` (the dashboard page, which shows the login form);
/// - `POST /login` (form field `token`) sets the cookie, `POST /logout` clears it.
///
/// The session cookie holds HMAC-SHA256(token, "weir admin session"): nothing is kept in memory, a
/// session outlives a restart, and changing the token ends every session. Comparisons are in
/// constant time.
struct AdminAuth {
    /// The token in force (bytes of its text).
    let token: [UInt8]
    /// Reads need no credentials (the listener is bound to a loopback address).
    let openReads: Bool
    /// Nothing needs credentials: the listener is a Unix socket, whose file permissions decide who connects.
    var trusted = false

    static let cookieName = "weir_admin"
    static let csrfHeader = "X-Weir-CSRF"

    /// The value the session cookie carries for `token`.
    var sessionValue: String {
        Digest.hex(Digest.hmacSHA256(key: token, message: Array("weir admin session".utf8)))
    }

    private enum Credential { case none, valid, invalid(String) }

    /// Nil when `request` may proceed to the route table; otherwise the refusal (401 or 403), or the
    /// answer to `POST /login` / `POST /logout`, which this type serves itself.
    func check(_ request: AdminRequest) -> AdminAPI.Answer? {
        let method = request.method, path = request.path
        switch (method, path) {
        case ("POST", "/login"): return login(request)
        case ("POST", "/logout"): return logout(request)
        case ("GET", "/"), ("HEAD", "/"), ("GET", "/session"), ("HEAD", "/session"): return nil
        default: break
        }
        let reading = method == "GET" || method == "HEAD"
        if trusted || reading && openReads { return nil }
        if let bearer = request.bearerToken {
            return matches(bearer) ? nil : Self.unauthorized("the bearer token is wrong")
        }
        switch cookieCredential(request) {
        case .none:
            return Self.unauthorized(reading ? "reads on a non-loopback admin listener need the admin token"
                                             : "\(method) needs the admin token")
        case .invalid(let why): return Self.unauthorized(why)
        case .valid:
            if reading { return nil }
            return crossSiteRefusal(request) ?? (request.csrf == nil
                ? Self.forbidden("a request authenticated by the session cookie needs the \(Self.csrfHeader) header")
                : nil)
        }
    }

    /// `GET /session`: whether the request carries a valid credential, and whether reads are open.
    func session(_ request: AdminRequest) -> AdminAPI.Answer {
        var authenticated = trusted
        if let bearer = request.bearerToken { authenticated = matches(bearer) }
        else if case .valid = cookieCredential(request) { authenticated = true }
        return AdminAPI.Answer(status: 200, body: Array("{\"authenticated\":\(authenticated),\"reads_open\":\(openReads)}\n".utf8))
    }

    /// Constant time in the length of the token.
    private func matches(_ candidate: String) -> Bool {
        !token.isEmpty && Digest.constantTimeEquals(Array(candidate.utf8), token)
    }

    private func cookieCredential(_ request: AdminRequest) -> Credential {
        guard let value = request.cookieValue(Self.cookieName), !value.isEmpty else { return .none }
        guard !token.isEmpty else { return .invalid("this admin listener has no token") }
        return Digest.constantTimeEquals(Array(value.utf8), Array(sessionValue.utf8))
            ? .valid : .invalid("the session cookie is not valid (the admin token changed?): log in again")
    }

    /// 403 when the request comes from another site: an `Origin` other than the listener's own
    /// (`http://` + the Host it was sent to), or `Sec-Fetch-Site: cross-site`. Nil otherwise.
    func crossSiteRefusal(_ request: AdminRequest) -> AdminAPI.Answer? {
        if request.secFetchSite?.lowercased() == "cross-site" {
            return Self.forbidden("cross-site request refused (Sec-Fetch-Site: cross-site)")
        }
        if let origin = request.origin {
            let own = request.host.map { "http://" + $0.lowercased() }
            guard origin.lowercased() == own else {
                return Self.forbidden("cross-site request refused: Origin \(origin) is not this admin listener")
            }
        }
        return nil
    }

    private func login(_ request: AdminRequest) -> AdminAPI.Answer {
        if let refusal = crossSiteRefusal(request) { return refusal }
        let form = String(decoding: request.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let given = AdminAPI.queryPairs(form).first { $0.0 == "token" }?.1 ?? ""
        guard !given.isEmpty else { return Self.unauthorized("give the admin token as the form field token") }
        guard matches(given) else { return Self.unauthorized("wrong admin token") }
        var answer = AdminAPI.Answer(status: 200, body: Array("{\"authenticated\":true}\n".utf8))
        answer.headers = [("Set-Cookie", "\(Self.cookieName)=\(sessionValue); HttpOnly; SameSite=Strict; Path=/")]
        return answer
    }

    private func logout(_ request: AdminRequest) -> AdminAPI.Answer {
        if let refusal = crossSiteRefusal(request) { return refusal }
        var answer = AdminAPI.Answer(status: 200, body: Array("{\"authenticated\":false}\n".utf8))
        answer.headers = [("Set-Cookie", "\(Self.cookieName)=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")]
        return answer
    }

    static func unauthorized(_ why: String) -> AdminAPI.Answer {
        var answer = text(401, "unauthorized: \(why); send Authorization: Bearer <token> (weir commands read it from "
                          + "--token, WEIR_ADMIN_TOKEN, [admin] token / token_file, or <state_dir>/admin.token)")
        answer.headers = [("WWW-Authenticate", "Bearer realm=\"weir\"")]
        return answer
    }

    static func forbidden(_ why: String) -> AdminAPI.Answer { text(403, "forbidden: \(why)") }

    private static func text(_ status: Int, _ message: String) -> AdminAPI.Answer {
        AdminAPI.Answer(status: status, contentType: "text/plain; charset=utf-8", body: Array((message + "\n").utf8))
    }
}

/// The admin token when none is configured: read from `<state_dir>/admin.token`, else 32 random
/// bytes from the OS as hex, written there with mode 0600 and reused after restarts.
enum AdminToken {
    static let fileName = "admin.token"

    /// The token of `configuration` (`token` / `token_file`), else the kept or generated one.
    /// Throws an error naming the path when a generated token can be neither read nor written.
    static func resolve(_ configuration: WeirConfiguration, log: (String) -> Void) throws -> [UInt8] {
        if let token = configuration.admin.token { return Array(token.utf8) }
        let directory = configuration.global.stateDirectory
        let path = (directory as NSString).appendingPathComponent(fileName)
        if let kept = read(path) { return Array(kept.utf8) }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let token = Digest.hex(Digest.randomBytes(32))
            try AtomicFile.write(Array((token + "\n").utf8), to: path, mode: 0o600)
            log("weir: no [admin] token configured: generated one into \(path) (mode 0600); weir commands read it from there")
            return Array(token.utf8)
        } catch {
            throw IOError("cannot keep a generated admin token in \(path) (set [global] state_dir to a writable directory, "
                          + "or [admin] token_file): \(error)")
        }
    }

    /// Whether `address` is a loopback address (127.0.0.0/8, ::1): then reads need no token.
    static func isLoopback(_ address: SocketAddress) -> Bool {
        address.host.hasPrefix("127.") || address.host == "::1"
    }

    /// The token kept at `path` (trimmed; at least the minimum length), or nil.
    static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.count >= AdminSettings.minimumTokenLength ? text : nil
    }
}

extension AdminAPI {
    /// The rules in force: the configured token of the current generation (so a reload that
    /// changes `token` / `token_file` applies at once), else the one the process started with.
    var auth: AdminAuth {
        AdminAuth(token: generation().configuration.admin.token.map { Array($0.utf8) } ?? startToken, openReads: openReads,
                  trusted: overUnixSocket)
    }

    /// Answers `request` after authenticating it (`AdminAuth.check`); nil when it is allowed and
    /// must be answered later (`deferredAnswer`, e.g. `POST /upgrade`). `refusal` is what
    /// `AdminServer` sends first.
    func refusal(_ request: AdminRequest) -> Answer? {
        if request.path == "/session", request.method == "GET" || request.method == "HEAD" { return auth.session(request) }
        return auth.check(request)
    }

    /// The whole answer to an authenticated-or-refused `request` (not for deferred ones).
    func answer(_ request: AdminRequest) -> Answer {
        refusal(request) ?? answer(method: request.method, target: request.target)
    }
}

import WeirConfig

/// What a sticky decision needs from outside WeirBalance, injected by the gateway (and faked by
/// tests): the keyed MAC that signs pins, fresh session ids, and read access to the register of
/// users. Nothing here is written to: changes to the register come back as `RegisterChange` values
/// in the verdict, for the caller to apply.
public protocol StickyServices {
    /// A keyed MAC of `message` under the sticky secret, at least 16 bytes (the gateway uses
    /// HMAC-SHA256 from WeirIO). Must be deterministic: the same message gives the same MAC.
    func mac(_ message: [UInt8]) -> [UInt8]
    /// A fresh, unguessable session id in base64url (see `PinToken.session(from:)`).
    func newSession() -> String
    /// The server index of the live register entry `key`, or nil when there is none (or it idled out).
    func pinnedServer(for key: String, nowMs: Int64) -> Int?
    /// The users per server index: live pins their clients have presented back (confirmed), with
    /// what other gateway instances report when they share their registers.
    func users(nowMs: Int64) -> [Int: Int]
}

/// A change to the register of users that a verdict asks for.
public enum RegisterChange: Sendable, Equatable {
    /// Insert or renew `key` → `server` for the sticky path `path`, idle lifetime `idleMs`. `presented`:
    /// the client presented this pin back (a valid pin cookie; for a source rule, a later request from
    /// the same address while its entry lives), so the transaction is really going on and the pin counts
    /// as a user. A pin not presented yet (a new cookie, an `/assign` token) is only a candidate.
    case touch(key: String, server: Int, path: String, idleMs: Int64, presented: Bool = false)
    /// End the transaction `key`.
    case remove(key: String)
}

/// The sticky side of a forward or redirect verdict: what the caller sends and records.
public struct PinCommit: Sendable, Equatable {
    /// The value of the Set-Cookie field the response must carry ("name=token; Max-Age=…; Path=…"),
    /// or nil (source rules send none).
    public var setCookie: String?
    /// What to change in the register, if anything.
    public var change: RegisterChange?
    /// The transaction was pinned to another server (down, in maintenance, or excluded): count it.
    public var moved: Bool
    /// The request presented a pin that was not honoured: count it. Reported on the first attempt
    /// of a request only (`RequestFacts.excluded` empty), so a retry does not count it twice.
    public var rejected: PinToken.Rejection?

    public init(setCookie: String? = nil, change: RegisterChange? = nil, moved: Bool = false,
                rejected: PinToken.Rejection? = nil) {
        self.setCookie = setCookie
        self.change = change
        self.moved = moved
        self.rejected = rejected
    }
}

/// The sticky side of one request: which rule concerns it, the request's role in it, and the pin it
/// presented. Pure: built from the request and the register's read side, then committed to the
/// server the decision chose.
public struct StickyPlan: Sendable {
    public let rule: CompiledSticky
    public let role: StickyRole
    /// The honoured pin: a valid cookie's server, or the register's entry for a source rule.
    public var pinnedServer: Int?
    /// The session id to keep (from a valid cookie, also at the entry point), nil for a new one.
    public var session: String?
    /// The register key of a source rule ("rule-path|client-address").
    public var sourceKey: String?
    /// Why a presented cookie pin was not honoured, nil when it was or none was presented.
    public var rejection: PinToken.Rejection?
    /// The client presented its pin back: a valid cookie (also at the entry point), or a live register
    /// entry for its source address. Its register entry then counts as a user.
    public var presented = false

    public init(rule: CompiledSticky, role: StickyRole, pinnedServer: Int? = nil, session: String? = nil,
                sourceKey: String? = nil, rejection: PinToken.Rejection? = nil) {
        self.rule = rule
        self.role = role
        self.pinnedServer = pinnedServer
        self.session = session
        self.sourceKey = sourceKey
        self.rejection = rejection
    }

    /// The plan for `request` on `route`, or nil when no sticky rule of the route concerns its path.
    /// `nowMs` is wall-clock milliseconds (pin expiry is a wall time; the register's idle times use
    /// the same clock). The cookie is read through `request.cookie`, the source key from
    /// `request.clientAddress`.
    public static func make(route: CompiledRoute, request: RequestFacts, snapshot: RoutingSnapshot,
                            services: some StickyServices, nowMs: Int64) -> StickyPlan? {
        guard let (index, role) = route.sticky(for: request.path) else { return nil }
        let rule = route.sticky[index]
        var plan = StickyPlan(rule: rule, role: role)
        let config = rule.rule
        switch config.by {
        case .source:
            let key = "\(config.path)|\(String(decoding: request.clientAddress, as: UTF8.self))"
            plan.sourceKey = key
            // A new transaction starts at the entry point: balanced as usual whatever pin exists.
            let known = services.pinnedServer(for: key, nowMs: nowMs)
            plan.presented = known != nil
            if role != .entry { plan.pinnedServer = known }
        case .cookie:
            guard let value = request.cookie(config.cookieName) else { break }
            let decoded = PinToken.decode(Array(value), scope: config.path, now: nowMs / 1000, mac: services.mac)
            if role == .entry {
                // The entry point is balanced as usual, but a client that had a pin keeps its session
                // id (the register moves it, not doubles it); a bad pin there is simply ignored.
                if case .success(let pin) = decoded {
                    plan.session = pin.session
                    plan.presented = true
                }
                break
            }
            switch decoded {
            case .success(let pin):
                if let server = snapshot.serverIndex(id: pin.serverID) {
                    plan.pinnedServer = server
                    plan.session = pin.session
                    plan.presented = true
                } else {
                    plan.rejection = .unknownServer
                }
            case .failure(let why):
                plan.rejection = why
            }
        }
        return plan
    }

    /// What sending the request to `server` means for the transaction: a new or renewed pin (cookie
    /// rules: a Set-Cookie and a register entry under the session id; source rules: the register
    /// entry), or, for a `complete` path, the end of it (an expired cookie, the entry removed).
    /// `secure` adds the Secure attribute (the client came over TLS). `firstAttempt` false leaves
    /// `rejected` out (a retry reports nothing twice).
    public func commit(server: Int, snapshot: RoutingSnapshot, services: some StickyServices, nowMs: Int64,
                       secure: Bool, firstAttempt: Bool = true) -> PinCommit {
        let config = rule.rule
        var commit = PinCommit(moved: pinnedServer.map { $0 != server } ?? false,
                               rejected: firstAttempt ? rejection : nil)
        let attributes = "; Path=\(String(decoding: rule.entry, as: UTF8.self)); HttpOnly; SameSite=Lax\(secure ? "; Secure" : "")"
        switch config.by {
        case .source:
            guard let key = sourceKey else { return commit }
            commit.change = role == .complete ? .remove(key: key)
                : .touch(key: key, server: server, path: config.path, idleMs: rule.idleSeconds * 1000, presented: presented)
        case .cookie:
            if role == .complete {
                commit.change = session.map { .remove(key: $0) }
                commit.setCookie = "\(config.cookieName)=; Max-Age=0\(attributes)"
            } else {
                let (token, change) = issue(server: server, snapshot: snapshot, services: services, nowMs: nowMs)
                commit.change = change
                commit.setCookie = "\(config.cookieName)=\(token); Max-Age=\(rule.idleSeconds)\(attributes)"
            }
        }
        return commit
    }

    /// A signed pin token for `server` and the register entry it needs. The session id outlives a
    /// move to another server (the register entry moves with it); a plan without one gets a new one
    /// (not presented yet: a candidate until the client sends it back).
    public func issue(server: Int, snapshot: RoutingSnapshot, services: some StickyServices,
                      nowMs: Int64) -> (token: String, change: RegisterChange) {
        let session = self.session ?? services.newSession()
        let pin = PinToken.Pin(serverID: snapshot.servers[server].config.id, session: session,
                               expires: nowMs / 1000 + rule.idleSeconds)
        return (PinToken.encode(pin, scope: rule.rule.path, mac: services.mac),
                .touch(key: session, server: server, path: rule.rule.path, idleMs: rule.idleSeconds * 1000,
                       presented: presented && self.session != nil))
    }
}

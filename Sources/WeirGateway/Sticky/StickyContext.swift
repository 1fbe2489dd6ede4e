import Atomics
import WeirBalance
import WeirConfig
import WeirHTTP
import WeirIO

/// What every worker shares for sticky transactions: the signing key, the register of users, and
/// what the listeners' run-time modes are.
final class StickyContext: @unchecked Sendable {
    private let key: [UInt8]
    let register: PinRegister
    /// Pins presented but not honoured (malformed, tampered, expired, or naming no server).
    let rejectedPins = ManagedAtomic<Int>(0)
    /// Transactions moved to another server because theirs was off-line or in maintenance.
    let movedPins = ManagedAtomic<Int>(0)

    init(key: [UInt8], capacity: Int) {
        self.key = key
        register = PinRegister(capacity: capacity)
    }

    /// HMAC-SHA256 under the sticky secret.
    func mac(_ message: [UInt8]) -> [UInt8] { Digest.hmacSHA256(key: key, message: message) }

    /// A fresh session id for a new transaction.
    func newSession() -> String { PinToken.session(from: Digest.randomBytes(9)) }
}

/// The sticky side of one request: which rule, the request's role in it, and the pin it presented.
struct StickyPlan {
    let rule: CompiledSticky
    let role: StickyRole
    /// The valid pin presented (cookie rules), or the register's entry (source rules).
    var pinnedServer: Int?
    var session: String?
    /// The register key for source rules.
    var sourceKey: String?
}

extension StickyPlan {
    /// Works out the plan for a request on a route with sticky rules; counts rejected pins.
    /// Returns nil when no rule concerns the request.
    static func make(route: CompiledRoute, path: UnsafeRawBufferPointer, head: RequestHead, clientAddress: String,
                     snapshot: RoutingSnapshot, context: StickyContext, nowMs: Int64) -> StickyPlan? {
        guard let (index, role) = route.sticky(for: path) else { return nil }
        let rule = route.sticky[index]
        var plan = StickyPlan(rule: rule, role: role)
        if role == .entry {
            // A new transaction starts at the entry point: balanced as usual whatever pin exists,
            // but a client that had one keeps its session id (the register moves it, not doubles it).
            if rule.rule.by == .source { plan.sourceKey = "\(rule.rule.path)|\(clientAddress)" }
            if rule.rule.by == .cookie, let range = CookieLookup.value(named: rule.rule.cookieName, in: head),
               case .success(let pin) = PinToken.decode(Array(head.bytes[range]), scope: rule.rule.path, now: nowMs / 1000, mac: context.mac) {
                plan.session = pin.session
            }
            return plan
        }
        switch rule.rule.by {
        case .source:
            let key = "\(rule.rule.path)|\(clientAddress)"
            plan.sourceKey = key
            plan.pinnedServer = context.register.server(for: key, nowMs: nowMs)
        case .cookie:
            guard let range = CookieLookup.value(named: rule.rule.cookieName, in: head) else { break }
            let token = Array(head.bytes[range])
            switch PinToken.decode(token, scope: rule.rule.path, now: nowMs / 1000, mac: context.mac) {
            case .success(let pin):
                if let server = snapshot.serverIndex(id: pin.serverID) {
                    plan.pinnedServer = server
                    plan.session = pin.session
                } else {
                    context.rejectedPins.wrappingIncrement(ordering: .relaxed)
                }
            case .failure:
                context.rejectedPins.wrappingIncrement(ordering: .relaxed)
            }
        }
        return plan
    }

    /// Records that the request goes to `server` and returns the Set-Cookie field (with CRLF) the
    /// response must carry, if any: a new or renewed pin, or an expired one after `complete`.
    func commit(server: Int, snapshot: RoutingSnapshot, context: StickyContext, nowMs: Int64, secure: Bool) -> [UInt8] {
        let config = rule.rule
        if let pinned = pinnedServer, pinned != server { context.movedPins.wrappingIncrement(ordering: .relaxed) }
        let idleMs = rule.idleSeconds * 1000
        let attributes = "; Path=\(String(decoding: rule.entry, as: UTF8.self)); HttpOnly; SameSite=Lax\(secure ? "; Secure" : "")"
        switch config.by {
        case .source:
            guard let key = sourceKey else { return [] }
            if role == .complete { context.register.remove(key) } else {
                context.register.touch(key, server: server, path: config.path, idleMs: idleMs, nowMs: nowMs)
            }
            return []
        case .cookie:
            if role == .complete {
                if let session { context.register.remove(session) }
                return Array("Set-Cookie: \(config.cookieName)=; Max-Age=0\(attributes)\r\n".utf8)
            }
            let token = issue(server: server, snapshot: snapshot, context: context, nowMs: nowMs)
            return Array("Set-Cookie: \(config.cookieName)=\(token); Max-Age=\(rule.idleSeconds)\(attributes)\r\n".utf8)
        }
    }

    /// Registers the transaction on `server` (keeping the session when the pin stays on the same
    /// server) and returns the signed pin token.
    func issue(server: Int, snapshot: RoutingSnapshot, context: StickyContext, nowMs: Int64) -> String {
        // The session id outlives a move to another server: the register entry moves with it.
        let session = self.session ?? context.newSession()
        context.register.touch(session, server: server, path: rule.rule.path, idleMs: rule.idleSeconds * 1000, nowMs: nowMs)
        let pin = PinToken.Pin(serverID: snapshot.servers[server].config.id, session: session,
                               expires: nowMs / 1000 + rule.idleSeconds)
        return PinToken.encode(pin, scope: rule.rule.path, mac: context.mac)
    }
}

/// The run-time mode of each listener (proxy or redirect), switchable from the admin API; read by
/// every worker for each new request.
final class ListenerModes: Sendable {
    private let values: [ManagedAtomic<UInt8>]
    let names: [String]

    init(_ listeners: [Listener]) {
        values = listeners.map { ManagedAtomic<UInt8>($0.mode == .redirect ? 1 : 0) }
        names = listeners.map(\.name)
    }

    func mode(_ listener: Int) -> Mode { values[listener].load(ordering: .relaxed) == 1 ? .redirect : .proxy }

    func set(_ listener: Int, _ mode: Mode) { values[listener].store(mode == .redirect ? 1 : 0, ordering: .relaxed) }
}

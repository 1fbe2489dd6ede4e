import Atomics
import WeirBalance
import WeirConfig
import WeirHTTP
import WeirIO

/// What every worker shares for sticky transactions: the signing key and the register of users.
/// It is the `StickyServices` the pure `Decision.answer` reads through, and it carries out the
/// register changes and counters a verdict asks for.
final class StickyContext: StickyServices, @unchecked Sendable {
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

    func pinnedServer(for key: String, nowMs: Int64) -> Int? { register.server(for: key, nowMs: nowMs) }

    func users(nowMs: Int64) -> [Int: Int] { register.counts(nowMs: nowMs) }

    /// Carries out the sticky side of a verdict at wall time `nowMs`: counts a rejected or moved pin,
    /// applies the register change, and returns the Set-Cookie field (with CRLF) the response must
    /// carry, or nothing.
    func apply(_ pin: PinCommit?, nowMs: Int64) -> [UInt8] {
        guard let pin else { return [] }
        if pin.rejected != nil { rejectedPins.wrappingIncrement(ordering: .relaxed) }
        if pin.moved { movedPins.wrappingIncrement(ordering: .relaxed) }
        apply(pin.change, nowMs: nowMs)
        return pin.setCookie.map { Array("Set-Cookie: \($0)\r\n".utf8) } ?? []
    }

    /// Applies a register change at wall time `nowMs`.
    func apply(_ change: RegisterChange?, nowMs: Int64) {
        switch change {
        case .touch(let key, let server, let path, let idleMs)?:
            register.touch(key, server: server, path: path, idleMs: idleMs, nowMs: nowMs)
        case .remove(let key)?:
            register.remove(key)
        case nil:
            break
        }
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

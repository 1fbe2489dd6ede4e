import Atomics
import Foundation
import WeirBalance
import WeirConfig
import WeirHTTP
import WeirIO

/// What every worker shares for sticky transactions: the signing key and the register of users.
/// It is the `StickyServices` the pure `Decision.answer` reads through, and it carries out the
/// register changes and counters a verdict asks for.
///
/// The register has two tables: `register` holds the confirmed pins (the client presented its pin
/// back: the users), `unconfirmed` the pins handed out but not seen again (a cookieless request, an
/// `/assign` answer), each bounded on its own and the unconfirmed ones kept only a short while, so
/// a flood of one-shot clients neither counts as users nor pushes real users out.
final class StickyContext: StickyServices, @unchecked Sendable {
    private let key: [UInt8]
    let register: PinRegister
    let unconfirmed: PinRegister
    /// How long an unconfirmed pin is kept (at most; a shorter rule idle time wins).
    let unconfirmedIdleMs: Int64
    /// Pins presented but not honoured (malformed, tampered, expired, or naming no server).
    let rejectedPins = UnsafeAtomic<Int>.create(0)
    /// Transactions moved to another server because theirs was off-line or in maintenance.
    let movedPins = UnsafeAtomic<Int>.create(0)
    private let remoteLock = NSLock()
    /// Server index → users the other gateway instances report (`[group] share_users`).
    private var remote: [Int: Int] = [:]

    init(key: [UInt8], capacity: Int, unconfirmedCapacity: Int = 10_000, unconfirmedIdleMs: Int64 = 30_000) {
        self.key = key
        register = PinRegister(capacity: capacity)
        unconfirmed = PinRegister(capacity: unconfirmedCapacity)
        self.unconfirmedIdleMs = max(1, unconfirmedIdleMs)
    }

    deinit {
        _ = rejectedPins.destroy()
        _ = movedPins.destroy()
    }

    /// HMAC-SHA256 under the sticky secret.
    func mac(_ message: [UInt8]) -> [UInt8] { Digest.hmacSHA256(key: key, message: message) }

    /// A fresh session id for a new transaction.
    func newSession() -> String { PinToken.session(from: Digest.randomBytes(9)) }

    func pinnedServer(for key: String, nowMs: Int64) -> Int? {
        register.server(for: key, nowMs: nowMs) ?? unconfirmed.server(for: key, nowMs: nowMs)
    }

    /// Confirmed users here and those the other instances report.
    func users(nowMs: Int64) -> [Int: Int] {
        localUsers(nowMs: nowMs).merging(remoteUsers()) { $0 + $1 }
    }

    /// Confirmed, live pins of this instance per server index (what it shares with the others).
    func localUsers(nowMs: Int64) -> [Int: Int] { register.counts(nowMs: nowMs) }

    /// What the other instances report, per server index.
    func remoteUsers() -> [Int: Int] {
        remoteLock.lock(); defer { remoteLock.unlock() }
        return remote
    }

    /// Replaces what the other instances report (the group runtime, on each beacon or member change).
    func setRemoteUsers(_ counts: [Int: Int]) {
        remoteLock.lock(); defer { remoteLock.unlock() }
        remote = counts
    }

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

    /// Applies a register change at wall time `nowMs`: a presented pin moves to (or is renewed in) the
    /// confirmed table; one not presented yet is a candidate in the unconfirmed table.
    func apply(_ change: RegisterChange?, nowMs: Int64) {
        switch change {
        case .touch(let key, let server, let path, let idleMs, let presented)?:
            if presented || register.server(for: key, nowMs: nowMs) != nil {
                unconfirmed.remove(key)
                register.touch(key, server: server, path: path, idleMs: idleMs, nowMs: nowMs)
            } else {
                unconfirmed.touch(key, server: server, path: path, idleMs: min(idleMs, unconfirmedIdleMs), nowMs: nowMs)
            }
        case .remove(let key)?:
            register.remove(key)
            unconfirmed.remove(key)
        case nil:
            break
        }
    }
}

/// The run-time mode of each listener (proxy or redirect), switchable from the admin API; read by
/// every worker for each new request.
final class ListenerModes: Sendable {
    private let values: [UnsafeAtomic<UInt8>]
    let names: [String]

    init(_ listeners: [Listener]) {
        values = listeners.map { UnsafeAtomic<UInt8>.create($0.mode == .redirect ? 1 : 0) }
        names = listeners.map(\.name)
    }

    deinit {
        for value in values { _ = value.destroy() }
    }

    /// A reload: the modes of `listeners`, where a listener that `previous` had under the same name
    /// with the same configured mode keeps the mode it was switched to at run time.
    convenience init(_ listeners: [Listener], previous: ListenerModes, previousListeners: [Listener]) {
        self.init(listeners)
        for (i, listener) in listeners.enumerated() {
            guard let j = previousListeners.firstIndex(where: { $0.name == listener.name }),
                  previousListeners[j].mode == listener.mode else { continue }
            set(i, previous.mode(j))
        }
    }

    func mode(_ listener: Int) -> Mode { values[listener].load(ordering: .relaxed) == 1 ? .redirect : .proxy }

    func set(_ listener: Int, _ mode: Mode) { values[listener].store(mode == .redirect ? 1 : 0, ordering: .relaxed) }
}

import Atomics
import Synchronization

/// Per-client exclusions from `assign?failed=ID` (source document 004): a server a client reported
/// as not answering its test messages is not assigned to that client again until the exclusion
/// expires. Pure (time is passed in, monotonic nanoseconds), bounded in clients.
public struct ExclusionTable: Sendable, Equatable {
    /// How long a report excludes its server, in nanoseconds.
    public let durationNanoseconds: UInt64
    /// Most clients remembered at once.
    public let capacity: Int
    /// Client key → server index → expiry.
    private var entries: [String: [Int: UInt64]] = [:]

    public init(durationNanoseconds: UInt64, capacity: Int) {
        self.durationNanoseconds = durationNanoseconds
        self.capacity = max(1, capacity)
    }

    /// Clients with an exclusion (expired ones included until they are pruned).
    public var clientCount: Int { entries.count }

    /// `key` reported `server` at `now`: excluded for it until `now + duration` (a repeated report
    /// renews it). A new client beyond `capacity` first prunes expired entries, then drops the client
    /// whose exclusions all end first.
    public mutating func exclude(server: Int, for key: String, now: UInt64) {
        let (until, overflow) = now.addingReportingOverflow(durationNanoseconds)
        if entries[key] == nil, entries.count >= capacity { makeRoom(now: now) }
        entries[key, default: [:]][server] = overflow ? .max : until
    }

    /// The servers excluded for `key` at `now`, in ascending order.
    public func excluded(for key: String, now: UInt64) -> [Int] {
        guard let servers = entries[key] else { return [] }
        return servers.filter { $0.value > now }.map(\.key).sorted()
    }

    private mutating func makeRoom(now: UInt64) {
        entries = entries.compactMapValues { servers in
            let live = servers.filter { $0.value > now }
            return live.isEmpty ? nil : live
        }
        guard entries.count >= capacity,
              let first = entries.min(by: { ($0.value.values.max() ?? 0) < ($1.value.values.max() ?? 0) }) else { return }
        entries[first.key] = nil
    }
}

/// The live side of client failure reports, shared by every worker of a snapshot: the exclusion
/// table (under a lock: reports are rare, one lookup per `/assign`), a count per server, and the
/// hook that asks the prober (on the control thread) to probe a server at once.
public final class FailureReports: Sendable {
    private let table: Mutex<ExclusionTable>
    private let counts: [ManagedAtomic<Int>]
    private let probeHook = Mutex<(@Sendable (Int) -> Void)?>(nil)

    public init(servers: Int, durationNanoseconds: UInt64, capacity: Int) {
        table = Mutex(ExclusionTable(durationNanoseconds: durationNanoseconds, capacity: capacity))
        counts = (0..<servers).map { _ in ManagedAtomic(0) }
    }

    /// Any thread: `key` reports `server` failed. Excludes it for that client, counts the report and
    /// asks for an immediate probe. Never changes the server's health: only probes do.
    public func report(server: Int, for key: String, now: UInt64) {
        guard server >= 0, server < counts.count else { return }
        table.withLock { $0.exclude(server: server, for: key, now: now) }
        counts[server].wrappingIncrement(ordering: .relaxed)
        let hook = probeHook.withLock { $0 }
        hook?(server)
    }

    /// Any thread: the servers excluded for `key` now.
    public func excluded(for key: String, now: UInt64) -> [Int] {
        table.withLock { $0.excluded(for: key, now: now) }
    }

    /// Reports received about `server` since the snapshot was made.
    public func count(server: Int) -> Int {
        server >= 0 && server < counts.count ? counts[server].load(ordering: .relaxed) : 0
    }

    /// Control thread: who probes a reported server (nil: nobody, reports only exclude and count).
    /// The hook is called on the reporting thread and must hand the work over safely.
    public func setProbeHook(_ hook: (@Sendable (Int) -> Void)?) {
        probeHook.withLock { $0 = hook }
    }
}

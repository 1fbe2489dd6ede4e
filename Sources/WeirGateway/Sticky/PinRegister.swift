import Foundation

/// The register of users (source document 000): every live sticky transaction, shared by all
/// workers and the control thread. Keys are a cookie pin's session id or, for `by = "source"`
/// rules, "rule-path|client-address". Bounded: at `capacity` the least recently used entry goes;
/// an entry unused for its idle timeout is gone. One lock, taken only by requests on sticky paths.
final class PinRegister: @unchecked Sendable {
    struct Entry {
        var key: String
        var server: Int
        var path: String
        var createdMs: Int64
        var lastUseMs: Int64
        var idleMs: Int64
    }

    private let lock = NSLock()
    private var index: [String: Int] = [:]
    private var nodes: [Entry] = []
    private var prev: [Int] = []
    private var next: [Int] = []
    private var head = -1   // most recently used
    private var tail = -1   // least recently used
    private var free: [Int] = []
    let capacity: Int
    /// Entries pushed out because the register was full (for the status page).
    var evicted: Int { lock.lock(); defer { lock.unlock() }; return evictedCount }
    private var evictedCount = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// The server of a live entry, or nil (absent or idle too long; an idle one is removed).
    func server(for key: String, nowMs: Int64) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard let i = index[key] else { return nil }
        if nowMs - nodes[i].lastUseMs > nodes[i].idleMs { unlink(i); return nil }
        return nodes[i].server
    }

    /// Records a request of a transaction: inserts or renews `key` → `server`.
    func touch(_ key: String, server: Int, path: String, idleMs: Int64, nowMs: Int64) {
        lock.lock(); defer { lock.unlock() }
        if let i = index[key] {
            nodes[i].server = server
            nodes[i].lastUseMs = nowMs
            nodes[i].idleMs = idleMs
            moveToFront(i)
            return
        }
        if index.count >= capacity, tail >= 0 {
            unlink(tail)
            evictedCount += 1
        }
        let entry = Entry(key: key, server: server, path: path, createdMs: nowMs, lastUseMs: nowMs, idleMs: idleMs)
        let i: Int
        if let reused = free.popLast() {
            i = reused
            nodes[i] = entry
        } else {
            i = nodes.count
            nodes.append(entry)
            prev.append(-1)
            next.append(-1)
        }
        index[key] = i
        prev[i] = -1
        next[i] = head
        if head >= 0 { prev[head] = i }
        head = i
        if tail < 0 { tail = i }
    }

    /// Ends a transaction.
    func remove(_ key: String) {
        lock.lock(); defer { lock.unlock() }
        if let i = index[key] { unlink(i) }
    }

    /// Live entries (idle ones are dropped first), most recently used first.
    func live(nowMs: Int64) -> [Entry] {
        lock.lock(); defer { lock.unlock() }
        var out: [Entry] = []
        var i = head
        var stale: [Int] = []
        while i >= 0 {
            if nowMs - nodes[i].lastUseMs > nodes[i].idleMs { stale.append(i) } else { out.append(nodes[i]) }
            i = next[i]
        }
        for s in stale { unlink(s) }
        return out
    }

    /// Number of live entries per server index.
    func counts(nowMs: Int64) -> [Int: Int] {
        var counts: [Int: Int] = [:]
        for entry in live(nowMs: nowMs) { counts[entry.server, default: 0] += 1 }
        return counts
    }

    var count: Int { lock.lock(); defer { lock.unlock() }; return index.count }

    private func moveToFront(_ i: Int) {
        guard head != i else { return }
        detach(i)
        prev[i] = -1
        next[i] = head
        if head >= 0 { prev[head] = i }
        head = i
        if tail < 0 { tail = i }
    }

    private func detach(_ i: Int) {
        if prev[i] >= 0 { next[prev[i]] = next[i] } else { head = next[i] }
        if next[i] >= 0 { prev[next[i]] = prev[i] } else { tail = prev[i] }
    }

    private func unlink(_ i: Int) {
        detach(i)
        index.removeValue(forKey: nodes[i].key)
        free.append(i)
    }
}

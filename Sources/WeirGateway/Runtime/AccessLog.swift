import WeirIO

/// One worker's access log: lines are collected in memory and written in batches (on a timer and
/// when the batch grows), so logging costs one write(2) per batch, not per request.
final class AccessLog {
    private let sink: OutputFile?
    private var pending: [UInt8] = []
    private let flushThreshold = 32 * 1024

    /// `sink` nil means logging is off.
    init(sink: OutputFile?) {
        self.sink = sink
        pending.reserveCapacity(flushThreshold + 1024)
    }

    var isEnabled: Bool { sink != nil }

    /// Adds one line: time, client, "method target version", status, bytes sent to the client,
    /// server id (or "-"), total milliseconds, milliseconds until the server's response head ("-" if none).
    func record(client: String, requestLine: ArraySlice<UInt8>, status: Int, bytes: Int, server: String?,
                totalMs: Int64, upstreamMs: Int64?) {
        guard sink != nil else { return }
        pending.append(contentsOf: WallClock.iso8601Now().utf8)
        pending.append(UInt8(ascii: " "))
        pending.append(contentsOf: client.utf8)
        pending.append(contentsOf: " \"".utf8)
        for b in requestLine { pending.append(b == UInt8(ascii: "\"") || b < 32 ? UInt8(ascii: "?") : b) }
        pending.append(contentsOf: "\" \(status) \(bytes) \(server ?? "-") \(totalMs)ms \(upstreamMs.map { "\($0)ms" } ?? "-")\n".utf8)
        if pending.count >= flushThreshold { flush() }
    }

    /// Writes what is pending.
    func flush() {
        guard let sink, !pending.isEmpty else { return }
        pending.withUnsafeBytes { sink.write($0) }
        pending.removeAll(keepingCapacity: true)
    }
}

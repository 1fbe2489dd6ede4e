import WeirConfig
import WeirIO

/// One worker's access log: lines are collected in memory and written in batches (on a timer and
/// when the batch grows), so logging costs one write(2) per batch, not per request.
final class AccessLog {
    private var sink: OutputFile?
    private var pending: [UInt8] = []
    private let flushThreshold = 32 * 1024
    private var formatter: AccessLogFormatter
    /// Whether lines need the request's User-Agent and Referer (`combined`, `json`).
    let needsHeaderFields: Bool
    /// Whether the session captures the connect time and the pin outcome for the line (`json`).
    let needsDetail: Bool

    /// `sink` nil means logging is off.
    init(sink: OutputFile?, format: AccessLogFormat = .weir) {
        self.sink = sink
        formatter = AccessLogFormatter(format: format)
        needsHeaderFields = sink != nil && formatter.needsHeaderFields
        needsDetail = sink != nil && formatter.needsDetail
        pending.reserveCapacity(flushThreshold + 1024)
    }

    var isEnabled: Bool { sink != nil }

    /// Adds one line in the configured format (see `AccessLogFormatter`).
    func record(_ entry: AccessLogEntry) {
        guard sink != nil else { return }
        formatter.append(entry, to: &pending)
        if pending.count >= flushThreshold { flush() }
    }

    /// Writes what is pending.
    func flush() {
        guard let sink, !pending.isEmpty else { return }
        pending.withUnsafeBytes { sink.write($0) }
        pending.removeAll(keepingCapacity: true)
    }

    /// Log reopening (SIGUSR1): writes what is pending to the current file, then writes to
    /// `newSink` from now on (the old file is closed when no worker holds it any more). Does
    /// nothing while logging is off. Call on the worker's thread.
    func reopen(_ newSink: OutputFile) {
        guard sink != nil else { return }
        flush()
        sink = newSink
    }
}

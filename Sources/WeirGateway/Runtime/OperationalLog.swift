import Foundation
import WeirConfig
import WeirIO

/// Where the gateway's operational messages go: standard error, one line at a time, each with
/// its level. A message picks its level with an sd-daemon prefix (`LogLevel.warning.tag +
/// "weir: ..."`, like `SD_WARNING "..."` in C); one without a prefix is `info`. Messages below
/// the threshold are dropped. Under systemd's journal each line keeps a `<N>` prefix (the journal
/// stamps the time and reads the priority); elsewhere it gets a timestamp and the level word.
///
/// Not on the request path (reloads, health transitions, drains): one lock per message keeps the
/// lines of several threads whole and the settings consistent.
public final class OperationalLog: @unchecked Sendable {
    /// The process's standard error.
    public static let standardError = OperationalLog()

    private let lock = NSLock()
    private var threshold: LogLevel = .info
    private var journal = OperationalLog.stderrIsJournal(ProcessInfo.processInfo.environment)

    /// Applies `[global] log_level` and `log_format` (`auto`: the journal when `JOURNAL_STREAM`
    /// names the device and inode of standard error, as systemd sets it).
    public func configure(_ global: GlobalSettings) {
        let journal: Bool
        switch global.logFormat {
        case .auto: journal = Self.stderrIsJournal(ProcessInfo.processInfo.environment)
        case .plain: journal = false
        case .journal: journal = true
        }
        lock.lock(); defer { lock.unlock() }
        threshold = global.logLevel
        self.journal = journal
    }

    /// Writes `message` (several lines: each one prefixed) if its level is at or above the threshold.
    public func write(_ message: String) {
        lock.lock(); defer { lock.unlock() }
        guard let text = Self.render(message, threshold: threshold, journal: journal, timestamp: WallClock.iso8601Now) else { return }
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { OutputFile.standardError.write($0) }
    }

    // MARK: - Pure parts (unit-tested)

    /// The level a message asked for with its leading `<N>` (0...2 count as error), and the
    /// message without it; no valid prefix: `info` and the whole message.
    public static func split(_ message: String) -> (level: LogLevel, text: Substring) {
        let utf8 = message.utf8
        guard utf8.count >= 3 else { return (.info, message[...]) }
        let bytes = Array(utf8.prefix(3))
        guard bytes[0] == UInt8(ascii: "<"), bytes[2] == UInt8(ascii: ">"),
              (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[1]) else { return (.info, message[...]) }
        let level = LogLevel(rawValue: max(3, Int(bytes[1] - UInt8(ascii: "0")))) ?? .info
        return (level, message.dropFirst(3))
    }

    /// The text written for `message`: nil when its level is below `threshold`; else every line
    /// prefixed with `<N>` (`journal`) or with `timestamp()` and the level word, and a final newline.
    public static func render(_ message: String, threshold: LogLevel, journal: Bool,
                              timestamp: () -> String) -> String? {
        let (level, text) = split(message)
        guard level <= threshold else { return nil }
        let prefix = journal ? level.tag : "\(timestamp()) \(level.name) "
        var out = ""
        let body = text.hasSuffix("\n") ? text.dropLast() : text
        for line in body.split(separator: "\n", omittingEmptySubsequences: false) {
            out += prefix
            out += line
            out += "\n"
        }
        return out
    }

    /// Whether `JOURNAL_STREAM` ("device:inode", set by systemd when it connects standard error to
    /// the journal) names this process's standard error (a child whose stderr was redirected
    /// elsewhere inherits the variable but not the stream).
    static func stderrIsJournal(_ environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        guard let identity = OutputFile.standardError.deviceAndInode else { return false }
        return value == "\(identity.device):\(identity.inode)"
    }
}

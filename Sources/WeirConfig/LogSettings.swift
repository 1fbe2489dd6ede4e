/// `[global] access_log_format`: the shape of each access-log line (README "Logs").
public enum AccessLogFormat: String, Sendable, Equatable, Hashable, CaseIterable {
    /// Weir's own line (the default): `time client "request line" status bytes server total upstream`.
    case weir
    /// The nginx/Apache "combined" format, for the tools that read it.
    case combined
    /// One JSON object per line with stable field names.
    case json
}

/// The level of an operational message, ordered from most to least severe. The raw values are
/// syslog's priorities, which systemd's journal reads from a `<N>` line prefix (sd-daemon(3)).
public enum LogLevel: Int, Sendable, Equatable, Hashable, CaseIterable, Comparable {
    case error = 3
    case warning = 4
    case notice = 5
    case info = 6
    case debug = 7

    /// The name an operator writes (`log_level = "warning"`) and reads in a plain log line.
    public var name: String {
        switch self {
        case .error: return "error"
        case .warning: return "warning"
        case .notice: return "notice"
        case .info: return "info"
        case .debug: return "debug"
        }
    }

    /// The level named `name`, or nil.
    public init?(name: String) {
        guard let level = LogLevel.allCases.first(where: { $0.name == name }) else { return nil }
        self = level
    }

    /// The sd-daemon prefix that gives a message this level, e.g. `"<4>"` (like `SD_WARNING` in C):
    /// `log(LogLevel.warning.tag + "weir: ...")`. A message without one is `info`.
    public var tag: String { "<\(rawValue)>" }

    /// More severe first: `error < warning`, so "at least warning" is `level <= .warning`.
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// `[global] log_format`: how operational messages are written to standard error.
public enum LogFormat: String, Sendable, Equatable, Hashable, CaseIterable {
    /// `journal` when systemd connected standard error to the journal (`JOURNAL_STREAM` is set), else `plain`.
    case auto
    /// A timestamp and the level word before each line.
    case plain
    /// The sd-daemon `<N>` priority prefix before each line (the journal stamps the time itself).
    case journal
}

extension Rule where Value == LogLevel {
    /// One of the level names, most severe last in the message: `unknown log level "x" (did you mean ...)`.
    static var logLevel: Rule {
        Rule<String>.string.then { text, site, reader in
            if let level = LogLevel(name: text) { return level }
            let names = LogLevel.allCases.reversed().map(\.name)
            // "warn", "err": the short names other tools use are a prefix of ours.
            let guess = ValueRules.suggestion(for: text, among: names) ?? names.first { !text.isEmpty && $0.hasPrefix(text) }
            let hint = guess.map { " (did you mean \"\($0)\"?)" } ?? ""
            reader.fail(site, "unknown log level \"\(ValueRules.clip(text))\"\(hint); supported levels: \(ValueRules.quotedList(names))")
            return nil
        }
    }
}

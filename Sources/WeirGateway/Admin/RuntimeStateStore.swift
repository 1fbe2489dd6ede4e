import Foundation
import WeirConfig
import WeirIO

/// This process's runtime state (`RuntimeState`) and its file `<state_dir>/runtime.json`: read once at start,
/// laid over conf.d at every load (`overlay(on:)`), written atomically after every change (mode 0600).
/// Any thread (a lock); in practice the control thread (admin API, reload).
public final class RuntimeStateStore: @unchecked Sendable {
    /// `<state_dir>/runtime.json`.
    public let path: String
    private let directory: String
    private let log: (String) -> Void
    private let lock = NSLock()
    private var current: RuntimeState
    private var lastWarnings: [String] = []

    /// Reads `<stateDirectory>/runtime.json` (none: nothing changed yet).
    ///
    /// A file that cannot be used never stops the gateway: like HAProxy's server-state-file the runtime state is
    /// best effort, and conf.d alone is a configuration that was checked; refusing to start would turn a damaged
    /// state file into an outage. The gateway then starts on conf.d alone, says so loudly, and moves the file
    /// aside to `runtime.json.corrupt` so that the next change does not overwrite what the operator may want back.
    public init(stateDirectory: String, log: @escaping (String) -> Void) {
        directory = stateDirectory
        path = RuntimeState.path(stateDirectory: stateDirectory)
        self.log = log
        do {
            current = try RuntimeState.read(stateDirectory: stateDirectory)
        } catch {
            current = RuntimeState()
            log(LogLevel.warning.tag + "weir: WARNING: runtime state \(error): IGNORED, starting on conf.d alone (drains, modes, weights and "
                + "servers added or removed at run time are not applied)" + Self.setAside(path))
        }
    }

    /// At start: the store of `base`'s state_dir and `base` with its state laid over it.
    public static func overlay(on base: WeirConfiguration, log: @escaping (String) -> Void)
        -> (configuration: WeirConfiguration, store: RuntimeStateStore) {
        let store = RuntimeStateStore(stateDirectory: base.global.stateDirectory, log: log)
        return (store.overlay(on: base), store)
    }

    /// The state as it is now.
    public var state: RuntimeState { lock.withLock { current } }

    /// The entries the last `overlay(on:)` could not apply (see `RuntimeState.apply(to:)`).
    public var notApplied: [String] { lock.withLock { lastWarnings } }

    /// `base` (conf.d) with the state laid over it; each entry that could not be applied is logged and kept for
    /// `notApplied`. The one path for the start and every reload.
    public func overlay(on base: WeirConfiguration) -> WeirConfiguration {
        let state = self.state
        let (configuration, warnings) = state.apply(to: base)
        lock.withLock { lastWarnings = warnings }
        for line in warnings { log(LogLevel.warning.tag + "weir: runtime state \(path): \(line) (clear it with weir state clear)") }
        if !state.isEmpty {
            log(LogLevel.notice.tag + "weir: runtime state \(path): \(state.count) entries laid over conf.d" + (warnings.isEmpty ? "" : ", \(warnings.count) not applied"))
        }
        return configuration
    }

    /// Applies `change` and writes the file. Returns nil when written, else why not; the change is then kept in
    /// memory when `keepOnFailure` (it is already in effect, e.g. a drain) and undone otherwise.
    @discardableResult
    func update(keepOnFailure: Bool, _ change: (inout RuntimeState) -> Void) -> String? {
        lock.withLock {
            let before = current
            change(&current)
            guard current != before else { return nil }
            do {
                try write(current)
                return nil
            } catch {
                if !keepOnFailure { current = before }
                log(LogLevel.error.tag + "weir: WARNING: cannot write runtime state \(path): \(error)")
                return "\(error)"
            }
        }
    }

    /// Forgets entries (see `RuntimeState.clear(section:key:)`) and writes the file: for `weir state clear`
    /// while the gateway is not running. How many went, and why the file could not be written (nil: it was).
    public func clear(section: String?, key: String?) -> (cleared: Int, error: String?) {
        var cleared = 0
        let error = update(keepOnFailure: false) { cleared = $0.clear(section: section, key: key) }
        return (error == nil ? cleared : 0, error)
    }

    /// Puts `state` back (after a reload refused the change) and writes it; nil, or why it was not written.
    @discardableResult
    func restore(_ state: RuntimeState) -> String? {
        update(keepOnFailure: true) { $0 = state }
    }

    private func write(_ state: RuntimeState) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try AtomicFile.write(state.encoded(), to: path)
    }

    /// Moves an unusable file to `<path>.corrupt`; the clause for the log line.
    private static func setAside(_ path: String) -> String {
        let aside = path + ".corrupt"
        let files = FileManager.default
        guard files.fileExists(atPath: path) else { return "" }
        try? files.removeItem(atPath: aside)
        do {
            try files.moveItem(atPath: path, toPath: aside)
            return "; the file was moved to \(aside)"
        } catch {
            return "; it could not be moved aside (\(error)) and will be replaced at the next change"
        }
    }
}

/// `GET /state`: the file, the state, and the entries the last load could not apply. `weir state` prints it.
public struct StateDocument: Codable, Sendable, Equatable {
    public var file: String
    public var state: RuntimeState
    public var not_applied: [String]

    public init(file: String, state: RuntimeState, not_applied: [String]) {
        self.file = file
        self.state = state
        self.not_applied = not_applied
    }

    public func encoded(pretty: Bool = false) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8)) + [UInt8(ascii: "\n")]
    }
}

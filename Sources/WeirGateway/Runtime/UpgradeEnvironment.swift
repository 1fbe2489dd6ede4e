import WeirConfig

/// What an upgrading process tells the new one in its environment (pure: parsed and written here,
/// used by `UpgradeChild` and `UpgradeControl`):
///
/// - `WEIR_INHERITED_SOCKETS=4=127.0.0.1:8080,5=127.0.0.1:8080,6=[::1]:8443`: every listening
///   socket of every worker, as descriptor=address (a listener has one per worker of the old process);
/// - `WEIR_UPGRADE_READY_FD=3`: the new process's end of the hand-over channel (a Unix stream
///   socket): it writes `ready PID` once it serves (or `failed REASON`), the old one answers
///   `released` once it has stopped accepting;
/// - `WEIR_UPGRADE_FROM=1234`: the old process's pid (for the log).
public struct HandOverEnvironment: Equatable, Sendable {
    public static let socketsName = "WEIR_INHERITED_SOCKETS"
    public static let channelName = "WEIR_UPGRADE_READY_FD"
    public static let fromName = "WEIR_UPGRADE_FROM"
    public static let names = [socketsName, channelName, fromName]

    public struct Socket: Equatable, Sendable {
        public var fd: Int32
        public var address: SocketAddress
        public init(fd: Int32, address: SocketAddress) { self.fd = fd; self.address = address }
    }

    public var sockets: [Socket]
    public var channel: Int32
    public var previousPID: Int32?

    public init(sockets: [Socket], channel: Int32, previousPID: Int32?) {
        self.sockets = sockets
        self.channel = channel
        self.previousPID = previousPID
    }

    /// A malformed hand-over environment (a bug or a stray variable: the new process refuses to start).
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Reads the three variables from `environment`. Returns nil when the process was not started
    /// by an upgrade (none is set); throws a `Problem` naming the variable and the bad part.
    public static func parse(_ environment: [String: String]) throws(Problem) -> HandOverEnvironment? {
        let present = names.filter { environment[$0] != nil }
        guard !present.isEmpty else { return nil }
        guard let channelText = environment[channelName] else {
            throw Problem(description: "\(present.joined(separator: ", ")) set without \(channelName)")
        }
        guard let channel = descriptor(channelText) else {
            throw Problem(description: "\(channelName)=\(channelText): not a descriptor number (3 or more)")
        }
        var sockets: [Socket] = []
        for entry in (environment[socketsName] ?? "").split(separator: ",", omittingEmptySubsequences: true) {
            sockets.append(try socket(String(entry)))
        }
        var seen = Set<Int32>([channel])
        for s in sockets where !seen.insert(s.fd).inserted {
            throw Problem(description: "\(socketsName): descriptor \(s.fd) appears twice")
        }
        var previous: Int32? = nil
        if let from = environment[fromName] {
            guard let pid = Int32(from), pid > 0 else { throw Problem(description: "\(fromName)=\(from): not a pid") }
            previous = pid
        }
        return HandOverEnvironment(sockets: sockets, channel: channel, previousPID: previous)
    }

    /// The three variables, as `parse` reads them.
    public var variables: [String: String] {
        var out = [Self.socketsName: sockets.map { "\($0.fd)=\($0.address)" }.joined(separator: ","),
                   Self.channelName: "\(channel)"]
        if let previousPID { out[Self.fromName] = "\(previousPID)" }
        return out
    }

    /// The new process's environment: `current` ("NAME=value" entries) without any hand-over
    /// variable it may hold (from this process's own start), plus this hand-over's.
    public func childEnvironment(current: [String]) -> [String] {
        let kept = current.filter { entry in !Self.names.contains { entry.hasPrefix($0 + "=") } }
        return kept + variables.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    /// Which of a listener's `count` inherited sockets worker `worker` of `workers` takes: those
    /// at positions j with j % workers == worker. Every socket goes to exactly one worker, none is
    /// left unaccepted when the old process had more workers; a worker that gets none binds its
    /// own (SO_REUSEPORT: it joins the same group).
    public static func spread(count: Int, workers: Int, worker: Int) -> [Int] {
        precondition(workers > 0 && (0..<workers).contains(worker), "worker \(worker) of \(workers)")
        return stride(from: worker, to: count, by: workers).map { $0 }
    }

    private static func descriptor(_ text: String) -> Int32? {
        guard let fd = Int32(text), fd >= 3 else { return nil }
        return fd
    }

    private static func socket(_ entry: String) throws(Problem) -> Socket {
        guard let equals = entry.firstIndex(of: "="),
              let fd = descriptor(String(entry[..<equals])) else {
            throw Problem(description: "\(socketsName): \(entry) is not DESCRIPTOR=ADDRESS, e.g. 4=127.0.0.1:8080")
        }
        let text = String(entry[entry.index(after: equals)...])
        guard let address = SocketAddress.parse(text) else {
            throw Problem(description: "\(socketsName): \(text) (descriptor \(fd)) is not a numeric address such as 127.0.0.1:8080 or [::1]:8443")
        }
        return Socket(fd: fd, address: address)
    }
}

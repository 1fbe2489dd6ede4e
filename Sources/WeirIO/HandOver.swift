import Glibc
import CLibevent

// The system calls of a binary upgrade: spawning the new binary with the listening sockets, the
// hand-over channel between the two processes, the inherited sockets' own addresses, and the one
// systemd datagram the new process sends. The protocol itself lives in WeirGateway (Upgrade*.swift).

/// Spawns processes with chosen descriptors (posix_spawn: Foundation's Process closes them).
public enum ProcessSpawn {
    /// Starts `path` with `arguments` (argv[0] included) and `environment` ("NAME=value"). The
    /// child gets descriptors 0-2 of this process and `passing[i]` as descriptor 3 + i, and no
    /// other descriptor. Returns its pid. Throws an `IOError` when the spawn or the exec fails
    /// (e.g. ENOENT: no such binary).
    public static func spawn(path: String, arguments: [String], environment: [String], passing: [Int32]) throws -> pid_t {
        var pid: pid_t = 0
        let code = withCStrings(arguments) { argv in
            withCStrings(environment) { envp in
                passing.withUnsafeBufferPointer { fds in
                    weir_spawn_passing(path, argv, envp, fds.baseAddress, Int32(fds.count), &pid)
                }
            }
        }
        guard code == 0 else { throw IOError("start \(path)", code: code) }
        return pid
    }

    /// How a child ended.
    public enum Ending: Equatable, Sendable, CustomStringConvertible {
        case exited(Int32)
        case killed(signal: Int32)

        public var description: String {
            switch self {
            case .exited(let status): return "exited with status \(status)"
            case .killed(let signal): return "was killed by signal \(signal)"
            }
        }
    }

    /// Reaps `pid` if it has ended (waitpid with WNOHANG): its ending, or nil while it runs (or
    /// when it is not a child of this process any more).
    public static func reap(_ pid: pid_t) -> Ending? {
        var status: Int32 = 0
        guard case .done(1) = SystemCall.run({ weir_reap(pid, &status) }) else { return nil }
        return weir_exited(status) != 0 ? .exited(weir_exit_status(status)) : .killed(signal: weir_term_signal(status))
    }

    /// Why `path` may not be started by an upgrade, or nil: it must be a regular executable file
    /// owned by root or by this process's user and writable by nobody else (whoever can reach the
    /// admin listener must not get to run a binary of their own as the gateway's user).
    public static func untrustedExecutable(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return "\(IOError.errno("stat \(path)"))" }
        guard info.st_mode & S_IFMT == S_IFREG else { return "\(path) is not a regular file" }
        guard info.st_mode & 0o111 != 0 else { return "\(path) is not executable" }
        guard info.st_uid == 0 || info.st_uid == geteuid() else {
            return "\(path) belongs to uid \(info.st_uid), neither root nor this process's user (\(geteuid()))"
        }
        guard info.st_mode & 0o022 == 0 else { return "\(path) is writable by its group or others" }
        return nil
    }

    /// Sends `signal` to `pid`.
    public static func signal(_ pid: pid_t, _ signal: Int32) { _ = kill(pid, signal) }

    /// This process's executable as a path (readlink /proc/self/exe). Read it at start: after a
    /// package upgrade replaced the file, the link names the deleted old inode ("... (deleted)").
    public static func currentExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path.hasSuffix(" (deleted)") ? String(path.dropLast(10)) : path
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// An inherited descriptor, checked: a listening TCP socket and the address it is bound to.
public enum InheritedSocket {
    /// The local address of `fd` ("127.0.0.1:8080", "[::1]:8443") if it is a listening TCP socket.
    /// Throws an `IOError` otherwise (not open, not a socket, not listening).
    public static func address(of fd: Int32) throws -> String {
        var text = [CChar](repeating: 0, count: 64)
        var port: Int32 = 0
        guard weir_listening_address(fd, &text, 64, &port) == 0 else {
            throw IOError.errno("inherited descriptor \(fd) is not a listening TCP socket")
        }
        let host = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Makes an inherited descriptor close-on-exec (nothing this process starts gets it) and
    /// non-blocking, as the sockets Weir binds itself are. Throws an `IOError` when it cannot.
    public static func adopt(_ fd: Int32) throws {
        guard weir_adopt_descriptor(fd) == 0 else { throw IOError.errno("adopt inherited descriptor \(fd)") }
    }

    /// Closes an inherited descriptor this process does not use.
    public static func close(_ fd: Int32) { _ = Glibc.close(fd) }
}

/// One end of the hand-over channel: a Unix stream socket carrying short text lines between the
/// old process and the new one. Reading happens on a loop; writes are a few bytes into an empty
/// socket buffer, so they do not block. Use on the loop's thread.
public final class HandOverChannel {
    public let fd: Int32
    private var event: OpaquePointer?
    private var pending: [UInt8] = []
    private var onLine: ((String) -> Void)?
    private var onEnd: (() -> Void)?

    /// A connected pair: (this process's end, the end to pass to the child). Both close-on-exec.
    public static func pair() throws -> (HandOverChannel, Int32) {
        var fds: [Int32] = [-1, -1]
        guard weir_socketpair(&fds) == 0 else { throw IOError.errno("socketpair for the upgrade") }
        return (HandOverChannel(fd: fds[0]), fds[1])
    }

    /// Takes ownership of `fd` (an inherited end: made close-on-exec and non-blocking).
    public init(fd: Int32) {
        self.fd = fd
        _ = weir_adopt_descriptor(fd)
    }

    deinit { close() }

    /// Delivers each line read (without its newline) to `onLine`, and end of stream (the other
    /// process closed its end or exited) to `onEnd`, on `loop`.
    public func watch(loop: EventLoop, onLine: @escaping (String) -> Void, onEnd: @escaping () -> Void) {
        self.onLine = onLine
        self.onEnd = onEnd
        event = event_new(loop.base, fd, weir_ev_read() | weir_ev_persist(), { _, _, arg in
            Unmanaged<HandOverChannel>.fromOpaque(arg!).takeUnretainedValue().readable()
        }, Unmanaged.passUnretained(self).toOpaque())
        event_add(event, nil)
    }

    /// Writes `line` and a newline; false when the other end is gone.
    @discardableResult
    public func send(_ line: String) -> Bool {
        var bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeMutableBytes { raw in
                SystemCall.run { Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL)) }
            }
            guard case .done(let n) = result else { return false }
            offset += n
        }
        bytes.removeAll()
        return true
    }

    /// Stops watching and closes this end. Harmless twice.
    public func close() {
        if let event { event_free(event); self.event = nil }
        if !closed { closed = true; _ = Glibc.close(fd) }
    }
    private var closed = false

    private func readable() {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let result = chunk.withUnsafeMutableBytes { raw in SystemCall.run { recv(fd, raw.baseAddress!, raw.count, 0) } }
            switch result {
            case .done(0), .failed:
                flushLines()
                let end = onEnd
                close()
                end?()
                return
            case .done(let n):
                pending += chunk[0..<n]
                flushLines()
                if closed { return }
            case .wouldBlock:
                return
            }
        }
    }

    private func flushLines() {
        while let newline = pending.firstIndex(of: 10) {
            let line = String(decoding: pending[..<newline], as: UTF8.self)
            pending.removeSubrange(...newline)
            onLine?(line)
            if closed { return }
        }
    }
}

import Glibc
import CLibevent

/// Unix-domain stream sockets: the admin listener's `unix:/path` form and the client the `weir`
/// commands use to reach it.
public enum UnixStreamSocket {
    /// The longest path a `sockaddr_un` holds (without its terminating NUL).
    public static let maxPathLength = 107

    /// A new non-blocking, close-on-exec socket listening at `path` with permissions `mode`, not yet
    /// on any loop (adopt it with `ListeningSocket(loop:adopting:)`). A stale socket file (nobody
    /// accepts on it) is removed first; a live one is refused unless `replaceLive` (a binary
    /// upgrade's new process takes the path over from the old one). Throws an `IOError` naming the
    /// path: not a socket, another process listens there, or the bind / chmod / listen failed.
    public static func listen(path: String, mode: mode_t, backlog: Int32 = 64, replaceLive: Bool = false) throws -> Int32 {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFSOCK else {
                throw IOError("listen unix:\(path): the path exists and is not a socket; remove it or choose another path")
            }
            if !replaceLive, isLive(path) {
                throw IOError("listen unix:\(path): another process listens there (is weir already running?)")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError.errno("socket for unix:\(path)") }
        do {
            let bound = try withAddress(path) { Glibc.bind(fd, $0, $1) }
            guard bound == 0 else { throw IOError.errno("bind unix:\(path)") }
            guard chmod(path, mode) == 0 else { throw IOError.errno("chmod unix:\(path)") }
            guard Glibc.listen(fd, backlog) == 0 else { throw IOError.errno("listen unix:\(path)") }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// The inode of the socket file at `path`, or nil (to remove only the file this process made).
    public static func inode(_ path: String) -> UInt64? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else { return nil }
        return UInt64(info.st_ino)
    }

    /// Sends `request` to the stream socket at `path` and reads until the peer closes (an answer of
    /// at most `maxBytes`), blocking for at most `timeoutMilliseconds` per read or write. Throws an
    /// `IOError` naming the path when it cannot connect, times out, or the answer is too large.
    public static func exchange(path: String, request: [UInt8], timeoutMilliseconds: Int64, maxBytes: Int = 16 << 20) throws -> [UInt8] {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError.errno("socket for unix:\(path)") }
        defer { Glibc.close(fd) }
        var timeout = timeval(tv_sec: Int(timeoutMilliseconds / 1000), tv_usec: Int((timeoutMilliseconds % 1000) * 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard case .done = SystemCall.run({ (try? withAddress(path) { connect(fd, $0, $1) }) ?? -1 }) else {
            throw IOError.errno("connect unix:\(path)")
        }
        try request.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                switch SystemCall.run({ send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL)) }) {
                case .done(let n) where n > 0: offset += n
                case .failed(let code): throw IOError("write unix:\(path)", code: code)
                default: throw IOError("write unix:\(path): no progress within \(timeoutMilliseconds) ms")
                }
            }
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let result = chunk.withUnsafeMutableBytes { b in SystemCall.run({ recv(fd, b.baseAddress!, b.count, 0) }) }
            switch result {
            case .done(0): return answer
            case .done(let n):
                answer += chunk[0..<n]
                if answer.count > maxBytes { throw IOError("read unix:\(path): answer larger than \(maxBytes) bytes") }
            case .wouldBlock: throw IOError("read unix:\(path): no answer within \(timeoutMilliseconds) ms")
            case .failed(let code): throw IOError("read unix:\(path)", code: code)
            }
        }
    }

    /// Whether a process accepts connections at `path` now.
    private static func isLive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        return ((try? withAddress(path) { connect(fd, $0, $1) }) ?? -1) == 0
    }

    /// Calls `body` with a `sockaddr_un` for `path` and its length. Throws when the path is too long.
    private static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) throws -> R {
        let bytes = Array(path.utf8)
        guard bytes.count <= maxPathLength else {
            throw IOError("unix:\(path): a socket path has at most \(maxPathLength) bytes")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }
}

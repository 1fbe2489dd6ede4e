import Glibc
import CLibevent

/// An append-only output (stdout or a file) written with whole `write(2)` calls, so lines from
/// several threads never interleave mid-line (each write is one batch of complete lines).
public final class OutputFile: @unchecked Sendable {
    private let fd: Int32
    private let owned: Bool

    /// Standard output.
    public static let standardOutput = OutputFile(fd: 1, owned: false)

    private init(fd: Int32, owned: Bool) {
        self.fd = fd
        self.owned = owned
    }

    /// Opens `path` for appending, creating it with mode 0640. Throws an `IOError` naming the path.
    public convenience init(appendingTo path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw IOError.errno("open \(path)") }
        self.init(fd: fd, owned: true)
    }

    deinit { if owned { close(fd) } }

    /// Writes all of `bytes`; gives up silently on errors other than EINTR (a log must never stop traffic).
    public func write(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n > 0 { offset += n; continue }
            if n < 0 && weir_errno() == EINTR { continue }
            return
        }
    }
}

/// Wall-clock time for log lines.
public enum WallClock {
    /// Current UTC time as "2026-11-22T04:37:18.123Z".
    public static func iso8601Now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }

    /// Monotonic nanoseconds (the balancer's clock).
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

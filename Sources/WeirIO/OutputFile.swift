import Glibc
import CLibevent

/// An append-only output (stdout or a file) written with whole `write(2)` calls, so lines from
/// several threads never interleave mid-line (each write is one batch of complete lines).
public final class OutputFile: @unchecked Sendable {
    private let fd: Int32
    private let owned: Bool

    /// Standard output.
    public static let standardOutput = OutputFile(fd: 1, owned: false)
    /// Standard error (operational messages).
    public static let standardError = OutputFile(fd: 2, owned: false)

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

    /// The device and inode number of the open file (fstat), or nil when it cannot be read; what
    /// systemd's `JOURNAL_STREAM` names for a stream connected to the journal.
    public var deviceAndInode: (device: UInt64, inode: UInt64)? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Writes all of `bytes` (retrying EINTR); gives up silently on other errors (a log must never stop traffic).
    public func write(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            guard case .done(let n) = SystemCall.run({ Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset) }),
                  n > 0 else { return }
            offset += n
        }
    }
}

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

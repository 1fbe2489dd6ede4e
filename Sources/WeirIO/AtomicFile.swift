import Glibc

/// Replaces a small file so that a reader (or a crash at any moment) sees either the old contents or the new
/// ones, never a mix: write a temporary file beside it, fsync it, rename it over the target, fsync the directory.
public enum AtomicFile {
    /// Writes `bytes` to `path` atomically with permissions `mode` (default 0600: state files are the
    /// operator's). The directory must exist. Throws an `IOError` naming the step and the path; the target is
    /// then unchanged (the temporary file is removed).
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws {
        let temporary = "\(path).tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw IOError.errno("create \(temporary)") }
        do {
            defer { close(fd) }
            try writeAll(bytes, to: fd, path: temporary)
            // open() applied the umask: set the mode we were asked for.
            guard fchmod(fd, mode) == 0 else { throw IOError.errno("chmod \(temporary)") }
            guard case .done = SystemCall.run({ fsync(fd) }) else { throw IOError.errno("fsync \(temporary)") }
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = IOError.errno("rename \(temporary) to \(path)")
            unlink(temporary)
            throw error
        }
        syncDirectory(of: path)
    }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws {
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                switch SystemCall.run({ Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset) }) {
                case .done(let n) where n > 0: offset += n
                case .failed(let code): throw IOError("write \(path)", code: code)
                default: throw IOError("write \(path): no progress")
                }
            }
        }
    }

    /// Makes the rename itself durable. Best effort: the new contents are already in place either way.
    private static func syncDirectory(of path: String) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}

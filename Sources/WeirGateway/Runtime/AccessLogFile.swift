import Glibc
import WeirConfig
import WeirIO

/// Opening and reopening the access log's destination (`[global] access_log`).
enum AccessLogFile {
    /// Where the access log goes: nil when it is off. Throws an error naming the key and the path
    /// when the file cannot be opened for appending (e.g. its directory is not writable).
    static func open(_ destination: WeirConfig.AccessLog) throws -> OutputFile? {
        switch destination {
        case .off: return nil
        case .stdout: return OutputFile.standardOutput
        case .file(let path): return try openFile(path)
        }
    }

    /// Opens `path` again after a rotation (`mv` + SIGUSR1); nil for stdout and off (nothing to reopen).
    static func reopen(_ destination: WeirConfig.AccessLog) throws -> OutputFile? {
        guard case .file(let path) = destination else { return nil }
        return try openFile(path)
    }

    private static func openFile(_ path: String) throws -> OutputFile {
        do {
            return try OutputFile(appendingTo: path)
        } catch {
            let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            throw AccessLogOpenError(path: path, reason: "\(error)", directory: directory.isEmpty ? "/" : directory)
        }
    }
}

/// The access log's file cannot be opened: the message names the key, the path and the directory.
struct AccessLogOpenError: Error, CustomStringConvertible {
    let path: String
    let reason: String
    let directory: String

    var description: String {
        "[global] access_log = \"\(path)\": cannot open it for appending (\(reason)); "
            + "the directory \(directory) must exist and be writable by the user weir runs as"
    }
}

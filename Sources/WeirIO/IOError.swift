import Glibc
import CLibevent

/// An operating-system or library failure, with what Weir was doing when it happened.
/// errno is read only here and in `SystemCall` (the funnel), right after the failing call.
public struct IOError: Error, CustomStringConvertible, Sendable {
    /// What was being attempted, e.g. "bind 127.0.0.1:8080".
    public var operation: String
    /// The errno value (0 when the failure did not come from errno).
    public var code: Int32

    public init(_ operation: String, code: Int32 = 0) {
        self.operation = operation
        self.code = code
    }

    /// Captures the calling thread's errno for `operation`. Call immediately after the failing call.
    public static func errno(_ operation: String) -> IOError {
        IOError(operation, code: SystemCall.lastErrno)
    }

    public var description: String {
        guard code != 0, let text = strerror(code) else { return operation }
        return "\(operation): \(String(cString: text))"
    }
}

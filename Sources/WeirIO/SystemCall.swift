import Glibc
import CLibevent

/// What a failed system call's errno means for the caller.
public enum ErrnoClass: Equatable, Sendable {
    /// EINTR: a signal arrived before the call did anything; make the same call again.
    case interrupted
    /// EAGAIN / EWOULDBLOCK: the non-blocking descriptor is not ready; wait for readiness.
    case wouldBlock
    /// Anything else: a real failure with this errno value.
    case failed(Int32)

    /// Classifies `code`, an errno value read right after a call that reported failure.
    public init(_ code: Int32) {
        switch code {
        case EINTR: self = .interrupted
        case EAGAIN, EWOULDBLOCK: self = .wouldBlock
        default: self = .failed(code)
        }
    }
}

/// The outcome of a non-blocking system call after interruptions have been retried.
public enum SystemCallResult: Equatable, Sendable {
    /// The call succeeded with this (non-negative) return value.
    case done(Int)
    /// The descriptor was not ready (EAGAIN / EWOULDBLOCK).
    case wouldBlock
    /// The call failed with this errno value (never EINTR, EAGAIN or EWOULDBLOCK).
    case failed(Int32)
}

/// The one place where Weir reads errno (with `IOError.errno`, which uses it): right after the
/// call, on the calling thread, before anything else can overwrite it.
public enum SystemCall {
    /// Runs `call` (a system call or a libc/libevent wrapper that returns a negative value and sets
    /// errno on failure) again for as long as it fails with EINTR, and classifies the result.
    /// Precondition: a negative return means failure and errno is set then.
    public static func run<T: BinaryInteger>(_ call: () -> T) -> SystemCallResult {
        while true {
            let result = call()
            if result >= 0 { return .done(Int(result)) }
            switch ErrnoClass(weir_errno()) {
            case .interrupted: continue
            case .wouldBlock: return .wouldBlock
            case .failed(let code): return .failed(code)
            }
        }
    }

    /// Runs `call` once with errno cleared first and returns its result with the errno value it
    /// left (0 when it set none). For library calls such as `SSL_read_ex` that report a system
    /// error only through errno and whose other failures leave it untouched: clearing first keeps
    /// a stale value from an earlier call from being taken for theirs.
    public static func withErrno<T>(_ call: () -> T) -> (result: T, errno: Int32) {
        weir_set_errno(0)
        let result = call()
        return (result, weir_errno())
    }

    /// The calling thread's errno now. Only for a failure the caller has just seen (the funnel's
    /// other entries are preferred); `IOError.errno` uses it.
    public static var lastErrno: Int32 { weir_errno() }
}

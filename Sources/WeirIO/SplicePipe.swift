import Glibc
import CLibevent

/// A kernel pipe through which a body goes from one socket to another without being copied into
/// user space: `Connection.splice(into:max:)` fills it from a socket, `Connection.splice(from:)`
/// empties it into one (splice(2), what haproxy's `option splice-response` does). It counts the
/// bytes it holds. One loop's thread only.
public final class SplicePipe {
    let readEnd: Int32
    let writeEnd: Int32
    /// How many bytes the pipe can hold (asked for 1 MiB; the system may give less).
    public let capacity: Int
    /// Bytes taken from the source and not yet handed to the destination.
    public internal(set) var count = 0

    /// A new pipe, or nil when the process is out of descriptors (the caller copies instead).
    public init?() {
        var fds: [Int32] = [-1, -1]
        let capacity = weir_pipe_open(&fds, 1 << 20)
        guard capacity > 0 else { return nil }
        readEnd = fds[0]
        writeEnd = fds[1]
        self.capacity = Int(capacity)
    }

    deinit {
        Glibc.close(readEnd)
        Glibc.close(writeEnd)
    }

    /// Whether the pipe holds no bytes.
    public var isEmpty: Bool { count == 0 }
}

/// Empty pipes kept for the next body of a loop (two descriptors and a resize saved per body).
public final class SplicePipePool {
    private var idle: [SplicePipe] = []
    private let maxIdle: Int

    public init(maxIdle: Int = 32) { self.maxIdle = maxIdle }

    /// An empty pipe, from the pool or new; nil when none can be made.
    public func take() -> SplicePipe? { idle.popLast() ?? SplicePipe() }

    /// Returns `pipe` to the pool when it is empty and the pool has room (else it is closed).
    public func give(_ pipe: SplicePipe) {
        if pipe.isEmpty && idle.count < maxIdle { idle.append(pipe) }
    }
}

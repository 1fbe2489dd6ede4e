import CLibevent

/// The kernel-level name of a thread: what `/proc/PID/task/TID/comm`, `top -H`, `ps -L` and gdb
/// show. Foundation's `Thread.name` does not reach it on Linux.
public enum ThreadName {
    /// The longest name the kernel keeps, in bytes (16 with the terminating NUL).
    public static let maxBytes = 15

    /// Names the calling thread `name`, cut to `maxBytes` bytes at a character boundary.
    /// Naming the process's main thread renames the process too (`ps`, `killall`).
    public static func setCurrent(_ name: String) {
        var bytes: [UInt8] = []
        for character in name {
            let utf8 = Array(String(character).utf8)
            if bytes.count + utf8.count > maxBytes { break }
            bytes += utf8
        }
        bytes.append(0)
        _ = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { weir_set_thread_name($0.baseAddress!) }
        }
    }

    /// The calling thread's kernel-level name ("" if it cannot be read).
    public static var current: String {
        var text = [CChar](repeating: 0, count: maxBytes + 1)
        guard weir_thread_name(&text) == 0 else { return "" }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

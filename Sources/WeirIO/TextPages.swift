import Glibc

/// The executable's own machine code in memory (its r-x file mapping).
///
/// Start-up runs code that is never needed again (the command line, the configuration loader and
/// its TOML and Foundation code, the Swift runtime's first conformance lookups), and on every page
/// fault the kernel maps neighbouring pages of the file as well ("fault-around"). For a large static
/// binary that leaves about 11 MiB of code resident that an idle gateway does not use.
/// `releaseStartupPages` hands those pages back once the gateway serves: the code it runs from then
/// on comes back from the page cache (minor faults, the first time only). The pages are clean and
/// read-only, so nothing is lost; other processes' mappings of the file are not touched.
///
/// Fault-around stays on: turning it off as well (MADV_RANDOM) kept 2 MiB less resident but cost
/// about 15 % more CPU per request (`make bench` small), the code then being mapped page by page.
public enum TextPages {
    /// Releases the resident pages of the executable's code (`MADV_DONTNEED` on its r-x mapping).
    /// Returns how many bytes of code mappings it released (0 when `/proc/self/maps` cannot be read,
    /// or names no executable mapping of the binary).
    @discardableResult
    public static func releaseStartupPages() -> Int {
        guard let binary = executablePath(), let maps = readAll("/proc/self/maps") else { return 0 }
        var advised = 0
        for line in maps.split(separator: "\n") {
            // "start-end perms offset dev inode path"
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 6, parts[1] == "r-xp", parts[5...].joined(separator: " ") == binary else { continue }
            let bounds = parts[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16),
                  end > start, let address = UnsafeMutableRawPointer(bitPattern: start) else { continue }
            let length = Int(end - start)
            guard madvise(address, length, MADV_DONTNEED) == 0 else { continue }
            advised += length
        }
        return advised
    }

    private static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func readAll(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

// Shared by every fuzz target (compiled into each target's executable by scripts/fuzz.sh).
//
// A broken invariant must stop the fuzzer with a readable message so libFuzzer writes the input as a
// crash-* artifact: `require` prints to standard error and aborts (a deadly signal for libFuzzer).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Aborts the fuzzer with `message` when `condition` is false.
/// Why not `precondition`: its message is dropped in -O builds (only "Fatal error" remains).
@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition { invariantBroken(message(), file: file, line: line) }
}

/// Prints "INVARIANT BROKEN (file:line): message" to standard error and aborts.
func invariantBroken(_ message: String, file: StaticString, line: UInt) -> Never {
    let text = "INVARIANT BROKEN (\(file):\(line)): \(message)\n"
    _ = text.withCString { fputs($0, stderr) }
    fflush(stderr)
    abort()
}

/// The fuzzer's input as a byte array (copied: the targets slice and re-feed it).
func inputBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// A short printable rendering of bytes for invariant messages (escapes CR, LF, non-ASCII; cut at 200).
func show(_ bytes: some Collection<UInt8>) -> String {
    var s = "\""
    for b in bytes.prefix(200) {
        switch b {
        case 0x0D: s += "\\r"
        case 0x0A: s += "\\n"
        case 0x09: s += "\\t"
        case 0x22: s += "\\\""
        case 0x5C: s += "\\\\"
        case 0x20...0x7E: s.unicodeScalars.append(Unicode.Scalar(b))
        default: s += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16)
        }
    }
    return s + (bytes.count > 200 ? "\"..." : "\"")
}

/// Deterministic generator seeded from the input, so the split points a target tries are reproducible
/// from the crash artifact alone.
struct SplitMix64 {
    var state: UInt64

    /// Seeds from an FNV-1a hash of `bytes`.
    init(seededBy bytes: [UInt8]) {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        state = h
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `range`. Precondition: `range` is not empty.
    mutating func next(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound) &+ 1
        return range.lowerBound + Int(span == 0 ? next() : next() % span)
    }
}

/// The prefix lengths at which a target re-parses its input to check that arriving in pieces changes
/// nothing: every length when the input is short, else the edges plus `samples` pseudo-random ones.
/// All returned lengths are in 0..<count, sorted, without duplicates.
func splitPoints(count: Int, rng: inout SplitMix64, samples: Int = 12) -> [Int] {
    if count <= 64 { return Array(0..<count) }
    var points: Set<Int> = [0, 1, count / 2, count - 2, count - 1]
    for _ in 0..<samples { points.insert(rng.next(in: 0...(count - 1))) }
    return points.sorted()
}

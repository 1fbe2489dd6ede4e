/// 64-bit hashing for rendezvous (highest-random-weight) hashing, and a small PRNG for p2c.
enum BalanceHash {
    /// FNV-1a over `bytes`, finished with `mix` so that similar keys land far apart.
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01B3
        }
        return mix(h)
    }

    static func hash(_ text: String) -> UInt64 {
        var copy = text
        return copy.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    /// The SplitMix64 / murmur3-style finalizer: every input bit affects every output bit.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// The rendezvous score of a server (by its id's hash) for a key hash; the highest score wins.
    @inline(__always)
    static func score(key: UInt64, server: UInt64) -> UInt64 {
        mix(key ^ (server &* 0x9E37_79B9_7F4A_7C15) &+ server)
    }
}

/// SplitMix64: tiny, fast, deterministic; good enough to pick two servers at random.
struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        return BalanceHash.mix(state)
    }

    /// Uniform in 0..<bound (bound > 0), by multiply-shift (Lemire; the bias is negligible for small bounds).
    mutating func next(below bound: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}

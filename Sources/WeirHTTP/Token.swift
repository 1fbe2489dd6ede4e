/// Byte classes and ASCII helpers shared by the parsers. Branch-light, no tables in memory:
/// the 128-bit character classes are two 64-bit masks.
@usableFromInline
enum ASCII {
    @usableFromInline static let cr: UInt8 = 0x0D
    @usableFromInline static let lf: UInt8 = 0x0A
    @usableFromInline static let sp: UInt8 = 0x20
    @usableFromInline static let htab: UInt8 = 0x09
    @usableFromInline static let colon: UInt8 = 0x3A
    @usableFromInline static let comma: UInt8 = 0x2C
    @usableFromInline static let semicolon: UInt8 = 0x3B

    // tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    @usableFromInline static let tcharLow: UInt64 = 0x03ff_6cfa_0000_0000
    @usableFromInline static let tcharHigh: UInt64 = 0x57ff_ffff_c7ff_fffe
    // Host field bytes: unreserved / sub-delims / ":" / "[" / "]" / "%" (RFC 3986 host [":" port]).
    @usableFromInline static let hostLow: UInt64 = 0x2fff_7ff2_0000_0000
    @usableFromInline static let hostHigh: UInt64 = 0x47ff_fffe_afff_fffe

    /// true for a token character (RFC 9110 §5.6.2).
    @inlinable @inline(__always)
    static func isTChar(_ b: UInt8) -> Bool {
        inClass(b, tcharLow, tcharHigh)
    }

    /// true for a byte allowed in a Host field value.
    @inlinable @inline(__always)
    static func isHostChar(_ b: UInt8) -> Bool {
        inClass(b, hostLow, hostHigh)
    }

    @inlinable @inline(__always)
    static func inClass(_ b: UInt8, _ low: UInt64, _ high: UInt64) -> Bool {
        if b < 64 { return (low &>> UInt64(b)) & 1 != 0 }
        if b < 128 { return (high &>> UInt64(b &- 64)) & 1 != 0 }
        return false
    }

    /// true for SP or HTAB (OWS / BWS bytes).
    @inlinable @inline(__always)
    static func isWS(_ b: UInt8) -> Bool { b == sp || b == htab }

    /// true for a byte allowed inside a field value: HTAB, SP, VCHAR, obs-text (not CTL, not DEL).
    @inlinable @inline(__always)
    static func isFieldByte(_ b: UInt8) -> Bool { (b >= 0x20 && b != 0x7F) || b == htab }

    /// ASCII lowercase of `b` (other bytes unchanged).
    @inlinable @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { (b &- 0x41) < 26 ? b | 0x20 : b }

    /// Value of a hex digit, or nil.
    @inlinable @inline(__always)
    static func hexValue(_ b: UInt8) -> Int? {
        if b &- 0x30 < 10 { return Int(b &- 0x30) }
        let l = b | 0x20
        if l &- 0x61 < 6 { return Int(l &- 0x61 &+ 10) }
        return nil
    }

    /// true when `buf[range]` equals `lowercased` ASCII-case-insensitively.
    /// Precondition: `range` lies within `buf`; `lowercased` is lowercase ASCII.
    /// From 8 bytes on, compares a word at a time (the last word overlapping the one before).
    @inlinable
    static func equalsLowercased(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercased: StaticString) -> Bool {
        lowercased.withUTF8Buffer { s in
            let n = s.count
            guard n == range.count else { return false }
            #if _endian(little)
            if n >= 8, let base = buf.baseAddress, let literal = s.baseAddress {
                let p = base + range.lowerBound, q = UnsafeRawPointer(literal)
                var k = 0
                while true {
                    if lowerWord(p.loadUnaligned(fromByteOffset: k, as: UInt64.self)) != q.loadUnaligned(fromByteOffset: k, as: UInt64.self) {
                        return false
                    }
                    if k == n &- 8 { return true }
                    k = Swift.min(k &+ 8, n &- 8)
                }
            }
            #endif
            var j = range.lowerBound
            for c in s {
                if lower(buf[j]) != c { return false }
                j &+= 1
            }
            return true
        }
    }

    /// `lower` applied to each byte of a word: exact for every byte value (the sums are done on
    /// 7 bits, so nothing carries into the next byte, and bytes ≥ 0x80 are left alone).
    @inlinable @inline(__always)
    static func lowerWord(_ w: UInt64) -> UInt64 {
        let highs: UInt64 = 0x8080_8080_8080_8080
        let m = w & 0x7F7F_7F7F_7F7F_7F7F
        let upper = (m &+ 0x3F3F_3F3F_3F3F_3F3F) & ~(m &+ 0x2525_2525_2525_2525) & ~w & highs   // 0x41...0x5A
        return w | (upper &>> 2)
    }

    /// Lower-cases the ASCII letters of the `count` bytes at `p` in place, 8 at a time. `readable`:
    /// how many bytes from `p` may be read and written back unchanged (at least `count`); when it
    /// reaches past the last word, a tail shorter than 8 bytes is done as one masked word too.
    @inlinable
    static func lowerInPlace(_ p: UnsafeMutableRawPointer, count: Int, readable: Int = 0) {
        var i = 0
        while i &+ 8 <= count {
            (p + i).storeBytes(of: lowerWord((p + i).loadUnaligned(as: UInt64.self)), as: UInt64.self)
            i &+= 8
        }
        #if _endian(little)
        if i < count && i &+ 8 <= readable {
            // The first `count - i` bytes of the word (the low ones) lowered, the rest kept.
            let w = (p + i).loadUnaligned(as: UInt64.self)
            let mask: UInt64 = (1 &<< (UInt64(count &- i) &* 8)) &- 1
            (p + i).storeBytes(of: (lowerWord(w) & mask) | (w & ~mask), as: UInt64.self)
            return
        }
        #endif
        while i < count {
            (p + i).storeBytes(of: lower((p + i).load(as: UInt8.self)), as: UInt8.self)
            i &+= 1
        }
    }

    /// true when `buf[range]` equals the exact bytes of `s` (case-sensitive).
    @inlinable
    static func equalsExactly(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, _ s: StaticString) -> Bool {
        s.withUTF8Buffer { s in
            guard s.count == range.count else { return false }
            if s.count == 8, let base = buf.baseAddress, let literal = s.baseAddress {
                // "HTTP/1.1" and the like: one word.
                return (base + range.lowerBound).loadUnaligned(as: UInt64.self) == UnsafeRawPointer(literal).loadUnaligned(as: UInt64.self)
            }
            var j = range.lowerBound
            for c in s {
                if buf[j] != c { return false }
                j &+= 1
            }
            return true
        }
    }

    /// Index of the first LF in `buf[from..<to]`, or nil. Scans 8 bytes at a time.
    @inlinable
    static func firstLF(_ buf: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        var i = from
        #if _endian(little)
        if let base = buf.baseAddress {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            let lfs: UInt64 = 0x0A0A_0A0A_0A0A_0A0A
            while i &+ 8 <= to {
                let w = (base + i).loadUnaligned(as: UInt64.self) ^ lfs
                let z = (w &- ones) & ~w & highs
                if z != 0 { return i &+ (z.trailingZeroBitCount &>> 3) }
                i &+= 8
            }
        }
        #endif
        while i < to {
            if buf[i] == lf { return i }
            i &+= 1
        }
        return nil
    }

    /// Skips the bytes of `buf[from..<to]` that are ≥ 0x20 and ≠ 0x7F (field-value bytes other than
    /// HTAB), 8 at a time. Returns the index of the first other byte, or the start of the tail
    /// shorter than 8 bytes in which none was found; the caller checks the bytes from there one by one.
    @inlinable @inline(__always)
    static func skipFieldBytes8(_ buf: UnsafeRawBufferPointer, from: Int, to: Int) -> Int {
        var i = from
        #if _endian(little)
        if let base = buf.baseAddress {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            let spaces: UInt64 = 0x2020_2020_2020_2020
            let dels: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
            while i &+ 8 <= to {
                let w = (base + i).loadUnaligned(as: UInt64.self)
                // A borrow runs only out of a flagged byte, so the lowest flag of each mask is exact.
                let below = (w &- spaces) & ~w & highs       // a byte < 0x20
                let d = w ^ dels
                let del = (d &- ones) & ~d & highs           // a byte == 0x7F
                let flags = below | del
                if flags != 0 { return i &+ (flags.trailingZeroBitCount &>> 3) }
                i &+= 8
            }
        }
        #endif
        return i
    }

    /// Skips the bytes of `buf[from..<to]` that are ASCII letters or "-" (nearly every byte of a
    /// field name), 8 at a time. Returns the index of the first other byte, or the start of the tail
    /// shorter than 8 bytes in which none was found; the caller checks the bytes from there one by one.
    @inlinable @inline(__always)
    static func skipNameLetters8(_ buf: UnsafeRawBufferPointer, from: Int, to: Int) -> Int {
        var i = from
        #if _endian(little)
        if let base = buf.baseAddress {
            let highs: UInt64 = 0x8080_8080_8080_8080
            let lows: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
            while i &+ 8 <= to {
                let w = (base + i).loadUnaligned(as: UInt64.self)
                // Per byte on 7 bits (every sum stays below 0x100, nothing carries into the next
                // byte), so each flag is exact; bytes ≥ 0x80 are flagged through `w` itself.
                let m = (w | 0x2020_2020_2020_2020) & lows                  // letters lowercased
                let letter = (m &+ 0x1F1F_1F1F_1F1F_1F1F) & ~(m &+ 0x0505_0505_0505_0505) & highs  // 0x61...0x7A
                let e = (w & lows) ^ 0x2D2D_2D2D_2D2D_2D2D
                let dash = ~((e &+ lows) | e) & highs                       // "-"
                let other = (~(letter | dash) | w) & highs
                if other != 0 { return i &+ (other.trailingZeroBitCount &>> 3) }
                i &+= 8
            }
        }
        #endif
        return i
    }

    /// Index of the first byte of `buf[from..<to]` that is not SP/HTAB (or `to`).
    @inlinable @inline(__always)
    static func skipWS(_ buf: UnsafeRawBufferPointer, from: Int, to: Int) -> Int {
        var i = from
        while i < to && isWS(buf[i]) { i &+= 1 }
        return i
    }

    /// The range of `buf[range]` without leading and trailing SP/HTAB.
    @inlinable @inline(__always)
    static func trimWS(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int> {
        var lo = range.lowerBound
        var hi = range.upperBound
        while lo < hi && isWS(buf[lo]) { lo &+= 1 }
        while hi > lo && isWS(buf[hi &- 1]) { hi &-= 1 }
        return lo..<hi
    }
}

/// The parsers' byte comparisons, for the modules that read parsed heads.
public enum HeadBytes {
    /// true when `buf[range]` equals `lowercased` ASCII-case-insensitively.
    /// Precondition: `range` lies within `buf`; `lowercased` is lowercase ASCII.
    @inlinable @inline(__always)
    public static func equalsLowercased(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercased: StaticString) -> Bool {
        ASCII.equalsLowercased(buf, range, lowercased)
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// A response head that Weir's own session wrote for an HTTP/2 stream, read back in one pass: its
/// status, its fields as HTTP/2 sends them (`HTTP2ResponseFields`) and the framing of the body that
/// follows it.
///
/// The strict `ResponseHeadParser` is not needed here: every byte of such a head is either Weir's own
/// (status lines, added fields, local answers) or a field the strict parser already accepted from the
/// server and the rewriter copied as it was. So the reader only splits lines at CRLF and fields at
/// their colon; what does not have that shape is reported `.malformed` (the stream is then reset),
/// never guessed at.
public enum SessionResponseHead: Sendable {
    /// No complete head yet (`bytes` ends before the blank line).
    case needMore
    case malformed
    /// The head took the first `consumed` bytes.
    case complete(status: Int, fields: HTTP2ResponseFields, framing: BodyFraming, consumed: Int)

    /// Reads the head at the start of `bytes`. `requestWasHEAD`: the response to a HEAD request has no body.
    public static func read(_ bytes: UnsafeRawBufferPointer, requestWasHEAD: Bool) -> SessionResponseHead {
        guard let end = headEnd(bytes) else { return .needMore }
        // "HTTP/1.x NNN ..."
        guard end >= 12, bytes[8] == 32, let status = threeDigits(bytes, at: 9) else { return .malformed }
        // The fields keep ranges of one copy of the head (names lower-cased in it), not a copy each.
        var contentLength: Int?
        var transferEncoding: Range<Int>?
        var malformed = false
        let fields = HTTP2ResponseFields(copying: UnsafeRawBufferPointer(rebasing: bytes[0..<end]), fields: 16) { fields in
            var line = find(10, in: bytes, 0..<end)! + 1   // past the status line (bytes[end - 1] is a LF)
            while line < end {
                let lineEnd = find(13, in: bytes, line..<end)!   // bytes[end - 2] is a CR
                let colon = find(UInt8(ascii: ":"), in: bytes, line..<lineEnd) ?? line
                guard bytes[lineEnd + 1] == 10, colon > line else { malformed = true; return }
                let value = ASCII.trimWS(bytes, colon + 1..<lineEnd)
                let (v, e) = (value.lowerBound, value.upperBound)
                let name = UnsafeRawBufferPointer(rebasing: bytes[line..<colon])
                if name.count == 14, ASCII.equalsLowercased(name, 0..<14, "content-length") {
                    guard let n = decimal(bytes, v..<e) else { malformed = true; return }
                    contentLength = n
                } else if name.count == 17, ASCII.equalsLowercased(name, 0..<17, "transfer-encoding") {
                    transferEncoding = v..<e
                }
                if !HopByHop.isHopByHop(name) { fields.addCopied(name: line..<colon, value: v..<e) }
                line = lineEnd + 2
            }
        }
        if malformed { return .malformed }
        let framing: BodyFraming
        if requestWasHEAD || (100..<200).contains(status) || status == 204 || status == 304 {
            framing = .none
        } else if let te = transferEncoding {
            framing = endsWithChunked(bytes, te) ? .chunked : .untilClose
        } else if let contentLength {
            framing = .contentLength(contentLength)
        } else {
            framing = .untilClose
        }
        return .complete(status: status, fields: fields, framing: framing, consumed: end + 2)
    }

    /// Where the blank line that ends the head starts (2 past the start of the first "\r\n\r\n").
    private static func headEnd(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var from = 0
        while let cr = find(13, in: bytes, from..<bytes.count) {
            guard cr + 3 < bytes.count else { return nil }
            if bytes[cr + 1] == 10 && bytes[cr + 2] == 13 && bytes[cr + 3] == 10 { return cr + 2 }
            from = cr + 1
        }
        return nil
    }

    /// The first index of `byte` in `bytes[range]`.
    private static func find(_ byte: UInt8, in bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, let base = bytes.baseAddress else { return nil }
        return memchr(base + range.lowerBound, Int32(byte), range.count).map { base.distance(to: UnsafeRawPointer($0)) }
    }

    private static func threeDigits(_ bytes: UnsafeRawBufferPointer, at i: Int) -> Int? {
        var n = 0
        for k in i..<i + 3 {
            let d = bytes[k] &- 48
            guard d < 10 else { return nil }
            n = n * 10 + Int(d)
        }
        return n
    }

    private static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var n = 0
        for k in range {
            let d = bytes[k] &- 48
            guard d < 10 else { return nil }
            n = n * 10 + Int(d)
        }
        return n
    }

    /// Whether the last coding of a Transfer-Encoding value is "chunked".
    private static func endsWithChunked(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        guard range.count >= 7 else { return false }
        let tail = range.upperBound - 7..<range.upperBound
        guard ASCII.equalsLowercased(bytes, tail, "chunked") else { return false }
        if tail.lowerBound == range.lowerBound { return true }
        let before = bytes[tail.lowerBound - 1]
        return before == UInt8(ascii: ",") || before == 32 || before == 9
    }
}

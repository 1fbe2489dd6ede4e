/// The client connection preface of HTTP/2 with prior knowledge (RFC 9113 §3.4).
public enum HTTP2Preface {
    /// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".
    public static let bytes: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    public enum Match: Sendable, Equatable {
        /// The bytes so far are a prefix of the preface: wait for more.
        case needMore
        /// The input starts with the preface.
        case http2
        /// Not the preface (an HTTP/1.x request, or garbage).
        case other
    }

    /// Whether `input` (the first bytes of a connection) starts with the preface.
    public static func match(_ input: UnsafeRawBufferPointer) -> Match {
        let n = min(input.count, bytes.count)
        for i in 0..<n where input[i] != bytes[i] { return .other }
        return n == bytes.count ? .http2 : .needMore
    }
}

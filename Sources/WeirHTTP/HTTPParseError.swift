/// Why a head or chunked body was rejected.
///
/// `status` is the status code the proxy should answer with (400, 414, 431, 505 for requests;
/// 502 for anything wrong in a response from a server), `reason` is one short line fit to send to a
/// client, `offset` is the byte offset in the parsed input where the problem was detected.
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Status code to answer with: 400, 414, 431, 505 (requests) or 502 (responses).
    public var status: Int
    /// One short line describing the problem, without CR/LF, e.g. "Content-Length together with Transfer-Encoding".
    public var reason: String
    /// Byte offset in the input buffer (for `ChunkedDecoder`: in the body) where the problem was detected.
    public var offset: Int

    /// Creates an error. Precondition: `reason` contains no CR or LF.
    @inlinable
    public init(status: Int, reason: String, offset: Int) {
        self.status = status
        self.reason = reason
        self.offset = offset
    }

    /// "`status` `reason` (at byte `offset`)".
    public var description: String {
        "\(status) \(reason) (at byte \(offset))"
    }
}

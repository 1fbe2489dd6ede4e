/// How the body that follows a head is delimited (RFC 9112 §6.3).
public enum BodyFraming: Sendable, Equatable {
    /// No body follows the head.
    case none
    /// Exactly N bytes of body follow (N ≥ 0; 0 means no body but a Content-Length was sent).
    case contentLength(Int)
    /// A chunked body follows; walk it with `ChunkedDecoder`.
    case chunked
    /// Responses only: the body lasts until the server closes the connection.
    case untilClose
}

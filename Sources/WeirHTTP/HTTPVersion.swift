/// The HTTP versions Weir speaks on the wire. Anything else is rejected by the parsers
/// (505 for a well-formed `HTTP/x.y` request version other than 1.0 / 1.1, 400 for garbage).
public enum HTTPVersion: Sendable, Equatable {
    /// `HTTP/1.0`
    case http10
    /// `HTTP/1.1`
    case http11
}

/// Outcome of one call to `RequestHeadParser.parse` or `ResponseHeadParser.parse`.
public enum ParseResult<Head>: Sendable where Head: Sendable {
    /// No complete head yet and nothing wrong so far: call again once more bytes have arrived.
    case needMore
    /// The input is malformed or over a limit; the connection should be answered/closed.
    case error(HTTPParseError)
    /// A complete head occupies `buffer[0..<consumed]` (including any skipped leading empty lines);
    /// the body or the next message starts at `consumed`.
    case complete(Head, consumed: Int)
}

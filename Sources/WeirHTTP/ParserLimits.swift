/// Size limits enforced by `RequestHeadParser` and `ResponseHeadParser`, also while a head is
/// still incomplete, so that a peer cannot make the caller buffer without bound.
public struct ParserLimits: Sendable, Equatable {
    /// Longest accepted request line (status line for responses), excluding its CRLF.
    /// Longer → 414 for requests (502 for responses). Default 8192.
    public var maxRequestLine: Int
    /// Longest accepted head: start line, field lines and all their CRLFs, including the final
    /// empty line (leading empty lines skipped before a request line are not counted).
    /// Longer → 431 for requests (502 for responses). Default 65536.
    public var maxHeaderBytes: Int
    /// Most field lines accepted in one head. More → 431 for requests (502 for responses). Default 100.
    public var maxHeaderCount: Int

    /// Creates limits. Preconditions: every value is positive (values ≤ 0 make every head fail).
    public init(maxRequestLine: Int = 8192, maxHeaderBytes: Int = 65536, maxHeaderCount: Int = 100) {
        self.maxRequestLine = maxRequestLine
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
    }
}

/// Walks one message body of a known framing (none, Content-Length, chunked, until close),
/// incrementally, over whatever bytes the caller has buffered. The one body reader of Weir: the
/// session (both directions), the prober, the admin server and the demo backend use it.
///
/// Drive it like this: call `next(_:available:)` with a contiguous view of the first buffered bytes
/// of the body (`window`) and the total number of buffered bytes (`available` ≥ `window.count`);
/// consume exactly what the step says (move, copy or drop it), then call again with the bytes that
/// follow. `isComplete` turns true once the body has ended; the bytes after it belong to the next
/// message. The reader never looks past what a step reports, so a caller that follows the steps
/// never forwards a byte the reader did not accept.
public struct BodyReader: Sendable {
    @usableFromInline
    enum Kind: Sendable {
        case complete
        case length(remaining: Int)
        case chunked(ChunkedDecoder)
        case untilClose
    }

    @usableFromInline var kind: Kind

    /// A chunk-size line or trailer section longer than this is an error (what `window` must hold at
    /// most for any framing element to be recognised).
    public static let maxFramingBytes = 16 * 1024 + 1024

    /// A reader at the start of a body framed as `framing` (`.contentLength(0)` and `.none` are
    /// complete at once). `maxTrailerBytes` bounds a chunked body's trailer section.
    @inlinable
    public init(_ framing: BodyFraming, maxTrailerBytes: Int = 16384) {
        switch framing {
        case .none, .contentLength(0): kind = .complete
        case .contentLength(let n): kind = .length(remaining: n)
        case .chunked: kind = .chunked(ChunkedDecoder(maxTrailerBytes: maxTrailerBytes))
        case .untilClose: kind = .untilClose
        }
    }

    /// A reader for a message without a body.
    public static var empty: BodyReader { BodyReader(.none) }

    /// One instruction for the caller.
    public enum Step: Sendable, Equatable {
        /// Nothing can be consumed yet: the body needs more bytes (or, when `window` was shorter
        /// than `available` and than `maxFramingBytes`, a larger window over the same bytes).
        case needMore
        /// The first N bytes are payload (chunk data, or length / close-delimited body bytes).
        case data(Int)
        /// The first N bytes are chunked framing: a chunk-size line, the CRLF after chunk data, or the
        /// last chunk with its trailer section (after which `isComplete` is true). Forward them to
        /// keep the body as it is; drop them to de-chunk it.
        case framing(Int)
        /// The body is malformed (status 400 for a request, 502 for a response); nothing more is
        /// accepted from it.
        case error(HTTPParseError)
    }

    /// Whether the whole body has been stepped over.
    @inlinable public var isComplete: Bool {
        if case .complete = kind { return true }
        return false
    }

    /// Whether the body ends only when the sender closes the connection.
    @inlinable public var isUntilClose: Bool {
        if case .untilClose = kind { return true }
        return false
    }

    /// The bytes still to come of a Content-Length body; nil for other framings and once complete.
    @inlinable public var remainingLength: Int? {
        if case .length(let remaining) = kind { return remaining }
        return nil
    }

    /// Whether the body is chunked (the framing steps exist).
    @inlinable public var isChunked: Bool {
        if case .chunked = kind { return true }
        return false
    }

    /// The next step over `window` (the first buffered body bytes, contiguous) when `available`
    /// bytes are buffered in all. Precondition: `available >= window.count`; the caller consumes
    /// exactly what the returned step reports before the next call. Once complete, returns
    /// `.needMore` and never consumes.
    @inlinable
    public mutating func next(_ window: UnsafeRawBufferPointer, available: Int) -> Step {
        switch kind {
        case .complete:
            return .needMore
        case .untilClose:
            return available > 0 ? .data(available) : .needMore
        case .length(let remaining):
            guard available > 0 else { return .needMore }
            let n = min(remaining, available)
            kind = n == remaining ? .complete : .length(remaining: remaining - n)
            return .data(n)
        case .chunked(var decoder):
            let step = decoder.step(window)
            let result: Step
            switch step {
            case .needMore:
                if window.count >= Self.maxFramingBytes {
                    result = .error(HTTPParseError(status: 400, reason: "chunk framing too long", offset: 0))
                } else {
                    result = .needMore
                }
            case .framing(let n):
                result = .framing(n)
            case .data(let n):
                let k = min(n, available)
                decoder.consumedData(k)
                result = .data(k)
            case .done(let n):
                kind = .complete
                return .framing(n)
            case .error(let e):
                result = .error(e)
            }
            kind = .chunked(decoder)
            return result
        }
    }

    /// The sender closed its side. Returns true when that is a valid end of this body (a
    /// close-delimited body, which becomes complete, or one already complete); false when the body
    /// was cut short.
    @inlinable
    public mutating func endOfStream() -> Bool {
        switch kind {
        case .complete: return true
        case .untilClose: kind = .complete; return true
        case .length, .chunked: return false
        }
    }

    /// Whether a `.needMore` from `next` over a `window` of that size, with `available` bytes
    /// buffered, asks for a larger window rather than more bytes.
    @inlinable
    public static func wantsLargerWindow(after window: Int, available: Int) -> Bool {
        window < available && window < maxFramingBytes
    }

    /// `next` over a queue of `available` buffered bytes that lends contiguous views of its first
    /// bytes through `prefix(limit, body)` (as `Buffer.withContiguousPrefix` does): a small window
    /// first, the largest framing window only when a framing element does not fit in it.
    @inlinable
    public mutating func next(available: Int,
                              prefix: (Int, (UnsafeRawBufferPointer) -> Step) -> Step) -> Step {
        guard isChunked else { return next(UnsafeRawBufferPointer(start: nil, count: 0), available: available) }
        let small = min(available, 256)
        let step = prefix(small) { self.next($0, available: available) }
        guard case .needMore = step, Self.wantsLargerWindow(after: small, available: available) else { return step }
        return prefix(Self.maxFramingBytes) { self.next($0, available: available) }
    }
}

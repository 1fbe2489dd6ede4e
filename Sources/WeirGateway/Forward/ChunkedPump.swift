import WeirHTTP
import WeirIO

/// How a chunked move ended.
enum ChunkedEnd {
    /// The body continues; call again when more bytes arrive.
    case more
    /// The last chunk and trailers were moved: the body is complete.
    case finished
    /// The framing is broken.
    case malformed(HTTPParseError)
}

/// The largest framing element (chunk-size line or trailer section) looked at before giving up.
private let maxFramingBytes = 16 * 1024 + 1024

/// Moves as much of a chunked body as is buffered from `source` to `destination`, validating its
/// framing with `decoder`. With `keepFraming` the body goes on verbatim (chunk lines and trailers
/// included); without, only the data bytes (de-chunking for an HTTP/1.0 client).
/// Returns the bytes added to `destination` and how the move ended.
func moveChunked(from source: Buffer, to destination: Buffer, decoder: inout ChunkedDecoder,
                 keepFraming: Bool) -> (moved: Int, end: ChunkedEnd) {
    var moved = 0
    while !source.isEmpty {
        // Framing is short: look at a small prefix first, a larger one only when it is not enough.
        var step = source.withContiguousPrefix(256) { decoder.step($0) }
        if case .needMore = step, source.count > 256 {
            step = source.withContiguousPrefix(maxFramingBytes) { decoder.step($0) }
            if case .needMore = step, source.count >= maxFramingBytes {
                return (moved, .malformed(HTTPParseError(status: 400, reason: "chunk framing too long", offset: 0)))
            }
        }
        switch step {
        case .needMore:
            return (moved, .more)
        case .framing(let n):
            if keepFraming { moved += source.move(n, to: destination) } else { source.drain(n) }
        case .data(let n):
            let k = source.move(min(n, source.count), to: destination)
            decoder.consumedData(k)
            moved += k
        case .done(let n):
            if keepFraming { moved += source.move(n, to: destination) } else { source.drain(n) }
            return (moved, .finished)
        case .error(let error):
            return (moved, .malformed(error))
        }
    }
    return (moved, .more)
}

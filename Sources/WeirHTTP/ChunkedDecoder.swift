/// Walks a chunked body (RFC 9112 §7.1) incrementally, to pass it through verbatim or to de-chunk it.
///
/// Drive it with the unconsumed bytes of the body: call `step` with the buffer that starts where the
/// previous step ended, consume what the step says, repeat. Framing bytes (chunk-size lines, the CRLF
/// after each chunk's data, the last chunk with its trailer section) are reported separately from
/// chunk data, so a caller can forward everything verbatim or forward only the data.
public struct ChunkedDecoder: Sendable {
    @usableFromInline
    enum State: UInt8, Sendable {
        case size, data, dataCRLF, done, failed
    }

    @usableFromInline var state: State = .size
    /// Chunk-data bytes left in the current chunk (state `.data`).
    @usableFromInline var remaining: Int = 0
    /// Body bytes consumed so far; error offsets are relative to the start of the body.
    @usableFromInline var position: Int = 0
    /// Where the body failed (no String is stored: the decoder stays trivially copyable).
    @usableFromInline var failureOffset: Int = 0

    /// Largest accepted trailer section (field lines and the final CRLF, after the last-chunk line).
    public let maxTrailerBytes: Int
    /// Largest accepted chunk-size line including extensions and CRLF.
    @usableFromInline static var maxChunkLineBytes: Int { 4096 }

    /// Creates a decoder positioned at the first chunk-size line of a body.
    /// Precondition: `maxTrailerBytes` > 0.
    public init(maxTrailerBytes: Int = 16384) {
        self.maxTrailerBytes = maxTrailerBytes
    }

    /// One instruction for the caller.
    public enum Step: Sendable, Equatable {
        /// The buffer start holds an incomplete chunk-size line / CRLF / trailer section (or the buffer
        /// is empty): call `step` again with more bytes, consuming nothing.
        case needMore
        /// The first N bytes of the buffer are framing (a chunk-size line incl. extensions and CRLF, or
        /// the CRLF after chunk data); the caller consumes exactly N.
        case framing(Int)
        /// Up to N bytes of chunk data follow (N = bytes left in this chunk, may exceed what is buffered);
        /// the caller consumes k ≤ min(N, buffered) and reports it with `consumedData(k)`.
        case data(Int)
        /// The first N bytes are the last-chunk line, trailer fields and final CRLF; the message ends
        /// after them. Once done, further steps return `.done(0)`.
        case done(Int)
        /// Malformed chunked body, status 400; the offset counts from the start of the body.
        /// Once failed, further steps return an error at the same offset.
        case error(HTTPParseError)
    }

    /// Looks at the bytes at the start of `buffer`, which continue the body from where the last step
    /// ended (after the caller consumed what that step reported).
    /// - Returns: the next `Step`. Never consumes anything itself except bookkeeping for framing/done.
    @inlinable
    public mutating func step(_ buffer: UnsafeRawBufferPointer) -> Step {
        switch state {
        case .data:
            return buffer.isEmpty ? .needMore : .data(remaining)
        case .dataCRLF:
            if buffer.isEmpty { return .needMore }
            if buffer[0] != ASCII.cr { return fail("missing CRLF after chunk data", at: 0) }
            if buffer.count < 2 { return .needMore }
            if buffer[1] != ASCII.lf { return fail("missing CRLF after chunk data", at: 1) }
            state = .size
            position &+= 2
            return .framing(2)
        case .size:
            return stepSizeLine(buffer)
        case .done:
            return .done(0)
        case .failed:
            return .error(HTTPParseError(status: 400, reason: "invalid chunked body", offset: failureOffset))
        }
    }

    /// Reports that k bytes of chunk data (after a `.data(N)` step) were consumed.
    /// Precondition: the last step returned `.data(N)` and 0 ≤ k ≤ N.
    @inlinable
    public mutating func consumedData(_ k: Int) {
        precondition(state == .data && k >= 0 && k <= remaining, "consumedData(\(k)) without a matching .data step")
        remaining &-= k
        position &+= k
        if remaining == 0 { state = .dataCRLF }
    }

    /// true once the last chunk and trailer section have been reported with `.done`.
    @inlinable public var isDone: Bool { state == .done }

    @usableFromInline
    mutating func fail(_ reason: String, at offset: Int) -> Step {
        let e = HTTPParseError(status: 400, reason: reason, offset: position &+ offset)
        state = .failed
        failureOffset = e.offset
        return .error(e)
    }

    @usableFromInline
    mutating func stepSizeLine(_ buffer: UnsafeRawBufferPointer) -> Step {
        do throws(HTTPParseError) {
            guard let line = try ChunkLine.parseSizeLine(buffer, maxLine: Self.maxChunkLineBytes) else { return .needMore }
            if line.size > 0 {
                state = .data
                remaining = line.size
                position &+= line.length
                return .framing(line.length)
            }
            guard let end = try ChunkLine.scanTrailers(buffer, from: line.length, maxTrailerBytes: maxTrailerBytes) else {
                return .needMore
            }
            state = .done
            position &+= end
            return .done(end)
        } catch {
            return fail(error.reason, at: error.offset)
        }
    }
}

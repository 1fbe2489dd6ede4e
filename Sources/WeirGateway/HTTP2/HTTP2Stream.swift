import WeirHTTP
import WeirIO

/// One HTTP/2 request stream, carried into an ordinary `ClientSession` through a stream connection
/// (`Connection.stream`) of an `HTTP2Lane`: the request's header list becomes an HTTP/1.1 head
/// (HTTP2RequestHead) and its DATA the body, so routing, the decision, stickiness, redirect and
/// forwarding are the HTTP/1.1 path unchanged; the HTTP/1.1 response the session writes is read
/// back (head, body, trailers) and handed to nghttp2 as HEADERS and DATA. Once the exchange is
/// over the lane goes back to the HTTP/2 connection for its next stream (`releaseLaneIfDone`).
///
/// Flow control follows the bytes: the client's windows open only as the session takes request
/// bytes on (`streamInputTaken`), and response bytes leave the session's output only as nghttp2
/// sends them (`pendingLimit` at most wait in between), so a slow client stops the server's
/// connection through the session's usual backpressure.
///
/// A stream object serves one stream after another: its connection keeps the closed ones nothing else
/// refers to and hands them to new streams (`reuse`), so a stream costs no allocation. Every stored
/// property below is set again in `reuse(id:nowMs:)`: a property added here must be added there.
final class HTTP2Stream {
    private(set) var id: Int32
    /// unowned(unsafe): the connection cancels every stream it still has when it ends (`cancel`), after
    /// which nothing calls a stream; a checked reference costs atomic operations at every use.
    unowned(unsafe) let owner: HTTP2Connection
    /// The lane serving the exchange: from the complete head until the exchange is over, the
    /// stream ends or the session closes. nil for a refused request.
    private(set) var lane: HTTP2Lane?
    /// The session's side of the stream (the lane's connection).
    var connection: Connection? { lane?.connection }
    /// `start` was called: the session reads what is appended to its input.
    private var started = false
    /// The whole request (head and body) was appended to the session's input.
    private var requestComplete = false
    private var chunkedRequest = false
    private var requestTrailers: [UInt8] = []
    private(set) var inTrailers = false
    /// DATA payload bytes given to the session and not yet taken by it (to consume, i.e. open the
    /// client's window, once it takes them).
    private var unconsumed = 0
    private var requestWasHEAD = false
    /// A response head came as fields since the last `translate`.
    private var headArrived = false

    private enum ResponseState { case head, body, done }
    private var state = ResponseState.head
    private var reader = BodyReader.empty
    /// Response body bytes waiting for nghttp2 to take them as DATA.
    private let pending = OwnedBuffer()
    private var bodyEnded = false
    private var trailers: HTTP2ResponseFields?
    /// nghttp2 waits for `resumeBody` (the source answered `.later`).
    private var waitingForBody = false
    private var sessionClosed = false
    /// Whether the final response head was submitted (a reset before it is the client's rapid reset).
    private(set) var responseStarted = false
    /// Whether the stream waits in its connection's list of streams to translate at the next flush.
    var isDirty = false
    /// Since when the response has waited on the stream's zero window (the connection's sweep sets it).
    var blockedSinceNs: UInt64?
    /// Whether response bytes wait to be sent (in `pending` or in the session's output).
    var hasResponseWaiting: Bool {
        state == .body && (!pending.buffer.isEmpty || !(connection?.output.isEmpty ?? true))
    }
    /// When the stream last moved a byte either way (for the idle timeout).
    private(set) var lastActivityMs: Int64

    /// Request body bytes discarded after the session's exchange ended, and whether the response's
    /// END_STREAM was sent before the request's, and whether the upload was reset.
    private var discarded = 0
    private var responseEndSent = false
    private var uploadStopped = false
    /// Request body bytes discarded before the client is asked to stop sending (RST_STREAM(NO_ERROR)).
    static let discardLimit = 1 << 20

    /// Response bytes held here at most; the rest waits in the session's output.
    static let pendingLimit = 64 * 1024

    init(id: Int32, owner: HTTP2Connection, nowMs: Int64) {
        self.id = id
        self.owner = owner
        lastActivityMs = nowMs
    }

    /// Makes this closed stream the new stream `id`, every property as `init` leaves it (the request
    /// trailers' and pending buffers keep their memory). Precondition: nothing else refers to it
    /// (its connection checked), so it holds no lane and is in no list of its connection.
    func reuse(id: Int32, nowMs: Int64) {
        precondition(lane == nil && !isDirty, "a stream reused while still in use")
        self.id = id
        started = false
        requestComplete = false
        chunkedRequest = false
        requestTrailers.removeAll(keepingCapacity: true)
        inTrailers = false
        unconsumed = 0
        requestWasHEAD = false
        headArrived = false
        state = .head
        reader = .empty
        pending.buffer.drainAll()
        bodyEnded = false
        trailers = nil
        waitingForBody = false
        sessionClosed = false
        responseStarted = false
        blockedSinceNs = nil
        lastActivityMs = nowMs
        discarded = 0
        responseEndSent = false
        uploadStopped = false
    }

    // MARK: - Request

    /// A field of the request's trailer section (after `beginTrailers`).
    func addTrailer(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        requestTrailers += name
        requestTrailers += [UInt8(ascii: ":"), UInt8(ascii: " ")]
        requestTrailers += value
        requestTrailers += [13, 10]
    }

    func beginTrailers() { inTrailers = true }

    /// The request's header block is complete: `head` is its HTTP/1.1 head for the session (`chunked`:
    /// the body that follows is framed chunked; `isHEAD`: its method is HEAD). Takes a lane
    /// (`acquire`: an idle one or a new one) and gives its session the head.
    func headComplete(_ head: UnsafeRawBufferPointer, chunked: Bool, isHEAD: Bool, endStream: Bool, lane acquire: () -> HTTP2Lane) {
        chunkedRequest = chunked
        requestComplete = endStream
        requestWasHEAD = isHEAD
        let lane = acquire()
        lane.stream = self
        lane.connection.input.append(head)
        self.lane = lane
    }

    /// The request was refused before it reached a session: the stream answers it itself.
    func refuse(_ refusal: HTTP2RequestHead.Refusal) {
        answerLocally(status: refusal.status, reason: refusal.reason)
    }

    /// Starts the exchange on the lane's session (after the input that carried the head was
    /// processed: a stream the client reset meanwhile never reaches a server).
    func start() {
        started = true
        connection?.streamInputArrived()
    }

    /// Request body bytes (a DATA payload).
    func body(_ bytes: UnsafeRawBufferPointer, nowMs: Int64) {
        guard let c = connection, !sessionClosed else { discard(bytes.count, nowMs: nowMs); return }
        lastActivityMs = nowMs
        if chunkedRequest { c.input.append(HTTP2RequestHead.chunkHeader(bytes.count)) }
        c.input.append(bytes)
        if chunkedRequest { c.input.append(StaticString("\r\n")) }
        unconsumed += bytes.count
        if started { c.streamInputArrived() }
    }

    /// Request body bytes no session takes any more (its exchange is over: an early answer, a refusal):
    /// both windows open again, so that the client can finish sending (curl, for one, reports an error
    /// when a reset stops its upload, even after a complete response); past `discardLimit`, once the
    /// response's END_STREAM is out, RST_STREAM(NO_ERROR) asks it to stop (RFC 9113 §8.1).
    private func discard(_ count: Int, nowMs: Int64) {
        lastActivityMs = nowMs
        owner.consume(streamID: id, count: count)
        discarded += count
        if discarded > Self.discardLimit && responseEndSent { stopUpload() }
    }

    /// The response's END_STREAM went out while the request body is still open.
    func responseEndedEarly() {
        responseEndSent = true
        lastActivityMs = owner.worker.loop.monotonicMilliseconds   // a second's grace from here (`uploadStalled`)
        // The exchange is over: the session need not wait for (or forward) the rest of the body.
        if let c = connection, !sessionClosed { c.streamFailed("response complete before the request body") }
        if discarded > Self.discardLimit { stopUpload() }
    }

    /// Whether the response ended early and the client sent nothing more for `ms`: a client that
    /// stops its upload but never ends the request (curl 7.88 does) is then told to stop for good.
    func uploadStalled(nowMs: Int64, ms: Int64) -> Bool {
        responseEndSent && !uploadStopped && nowMs - lastActivityMs > ms
    }

    func stopUpload() {
        guard !uploadStopped else { return }
        uploadStopped = true
        owner.reset(streamID: id, errorCode: 0x0)   // NO_ERROR
    }

    /// The request body ended (END_STREAM on DATA, or on the trailers' HEADERS).
    func requestEnded() {
        requestComplete = true
        guard let c = connection, !sessionClosed, chunkedRequest else { return }
        c.input.append(HTTP2RequestHead.lastChunk(trailers: requestTrailers))
        if started { c.streamInputArrived() }
    }

    /// The client reset the stream (or the connection ended): the session's exchange is cut off.
    func cancel() {
        owner.consumeConnection(unconsumed)
        unconsumed = 0
        if let c = connection, !sessionClosed { c.streamFailed("stream reset by the client") }
        lane?.stream = nil
        lane = nil
    }

    /// The exchange is over and the lane is fit for another stream: it goes back to the connection
    /// (what is left of the response waits in `pending`).
    private func releaseLaneIfDone() {
        guard requestComplete, state == .done || bodyEnded, let lane, lane.isReusable else { return }
        lane.stream = nil
        self.lane = nil
        owner.releaseLane(lane)
    }

    // MARK: - What the session does (through the lane)

    func streamOutputGrew(_ connection: Connection) { owner.markDirty(self) }

    func streamReadingChanged(_ connection: Connection) {
        if connection.isReading && !connection.input.isEmpty { owner.markDirty(self) }
    }

    func streamInputTaken(_ connection: Connection, count: Int) {
        let credit = min(count, unconsumed)
        guard credit > 0 else { return }
        unconsumed -= credit
        owner.consume(streamID: id, count: credit)
    }

    func streamClosed(_ connection: Connection, flushed: Bool) {
        sessionClosed = true
        if !flushed { connection.output.drainAll() }
        owner.consume(streamID: id, count: unconsumed)   // the stream's window too: see `discard`
        unconsumed = 0
        owner.markDirty(self)
    }

    // MARK: - Response

    /// Moves what the session wrote on: response heads to nghttp2, body bytes into `pending`.
    /// Also feeds the session input it holds while it reads again. Called once per loop pass for a
    /// stream whose connection changed.
    func translate(nowMs: Int64) {
        guard let c = connection else { return }
        if !sessionClosed, c.isReading, !c.input.isEmpty, started { c.streamInputArrived() }
        let output = c.output
        let before = output.count
        if before > 0 || headArrived { lastActivityMs = nowMs; headArrived = false }
        reading: while true {
            switch state {
            case .head:
                guard !output.isEmpty else { break reading }
                let available = output.count, limit = owner.responseHeadLimit
                let read = output.withContiguousPrefix(limit) {
                    SessionResponseHead.read($0, requestWasHEAD: requestWasHEAD)
                }
                switch read {
                case .needMore where available < limit:
                    break reading
                case .needMore, .malformed:
                    fail()
                    break reading
                case .complete(let status, let fields, let framing, let consumed):
                    output.drain(consumed)
                    submit(status: status, fields: fields, framing: framing)
                }
            case .body:
                moveBody(from: output)
                break reading
            case .done:
                output.drainAll()
                break reading
            }
        }
        if sessionClosed && output.isEmpty {
            switch state {
            case .head: fail()
            case .body where !bodyEnded:
                if reader.endOfStream() { bodyEnded = true } else { fail() }
            default: break
            }
            if bodyEnded, waitingForBody { waitingForBody = false; owner.resumeBody(streamID: id) }
        }
        if !sessionClosed {
            c.streamOutputTaken(before: before)
            releaseLaneIfDone()
        }
    }

    /// Whether the session may hand its next response head over as fields (`responseHead`): none
    /// was submitted yet (or only 1xx) and no bytes of the session's wait before it.
    var acceptsResponseHead: Bool {
        state == .head && !sessionClosed && (connection?.output.isEmpty ?? false)
    }

    /// The session's response head, as fields (see `HeadRewriter.clientResponseFields`); `framing`:
    /// that of the body bytes the session writes next. Precondition: `acceptsResponseHead`.
    func responseHead(status: Int, fields: HTTP2ResponseFields, framing: BodyFraming) {
        headArrived = true
        submit(status: status, fields: fields, framing: framing)
        owner.markDirty(self)   // translate: the lane may be free already (no body), or the body waits
    }

    private func submit(status: Int, fields: HTTP2ResponseFields, framing: BodyFraming) {
        if (100..<200).contains(status) && status != 101 {
            owner.submitHead(streamID: id, status: status, fields: fields, final: false, hasBody: false)
            return
        }
        reader = BodyReader(framing)
        let hasBody = !reader.isComplete
        responseStarted = true
        owner.submitHead(streamID: id, status: status, fields: fields, final: true, hasBody: hasBody)
        state = hasBody ? .body : .done
    }

    private func moveBody(from output: Buffer) {
        let target = pending.buffer
        while target.count < Self.pendingLimit, !output.isEmpty, !reader.isComplete {
            let step = reader.next(available: output.count) { limit, body in output.withContiguousPrefix(limit, body) }
            switch step {
            case .data(let n):
                output.move(n, to: target)
            case .framing(let n):
                if reader.isComplete {
                    let fields = output.withContiguousPrefix(n) { HTTP2ResponseFields(lastChunk: $0) }
                    if !fields.fields.isEmpty { trailers = fields }
                }
                output.drain(n)
            case .needMore:
                return finishMove()
            case .error:
                fail()
                return
            }
        }
        finishMove()
    }

    private func finishMove() {
        if reader.isComplete { bodyEnded = true }
        if waitingForBody && (!pending.buffer.isEmpty || bodyEnded) {
            waitingForBody = false
            owner.resumeBody(streamID: id)
        }
    }

    /// nghttp2 asks for the next DATA bytes (see `HTTP2SessionDelegate.http2Body`).
    func nextBody(into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyChunk {
        let n = pending.buffer.take(into: buffer)
        if n > 0 { blockedSinceNs = nil }
        if pending.buffer.count < Self.pendingLimit / 2, let c = connection, !c.output.isEmpty { owner.markDirty(self) }
        if pending.buffer.isEmpty && bodyEnded {
            if let trailers { owner.submitTrailers(streamID: id, fields: trailers) }
            state = .done
            return .bytes(n, last: true, trailers: trailers != nil)
        }
        if n == 0 {
            waitingForBody = true
            return .later
        }
        return .bytes(n, last: false, trailers: false)
    }

    /// Answers the request here (refused before it reached a session).
    private func answerLocally(status: Int, reason: String) {
        var fields = HTTP2ResponseFields()
        let text = Array("\(status) \(ReasonPhrase.for(status)): \(reason)\n".utf8)
        fields.append(name: "content-type", value: Array("text/plain".utf8))
        fields.append(name: "content-length", value: Array(String(text.count).utf8))
        pending.buffer.append(text)
        bodyEnded = true
        sessionClosed = true
        state = .body
        responseStarted = true
        owner.submitHead(streamID: id, status: status, fields: fields, final: true, hasBody: true)
    }

    /// The response cannot be completed: reset the stream (INTERNAL_ERROR), ending the session's exchange.
    private func fail() {
        state = .done
        owner.reset(streamID: id, errorCode: 0x2)
        if let c = connection, !sessionClosed { c.streamFailed("response could not be relayed over HTTP/2") }
    }
}

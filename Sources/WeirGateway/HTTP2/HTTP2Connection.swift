import WeirConfig
import WeirHTTP
import WeirIO

/// One HTTP/2 client connection (ALPN h2 on TLS, or prior knowledge on an `h2c` listener): feeds the
/// client's bytes to an nghttp2 server session, turns each request stream into an `HTTP2Stream`
/// served by an ordinary `ClientSession`, and writes what nghttp2 produces once per loop pass.
///
/// Limits: SETTINGS_MAX_CONCURRENT_STREAMS, the header list and frame sizes, a stream idle timeout,
/// and a cap on streams per connection, reached with a graceful GOAWAY. A drain or reload sends
/// a graceful GOAWAY too: streams under way finish, the client opens the next ones elsewhere.
///
/// Attacks: every frame header, client reset, provoked reset, useless WINDOW_UPDATE and completed
/// stream goes to the connection's `HTTP2Guard` (WeirHTTP); past its threshold the connection gets
/// GOAWAY(ENHANCE_YOUR_CALM), is read no more and closes once that is sent. Streams start only
/// after the whole input that carried their HEADERS was processed, so HEADERS followed by RST_STREAM
/// in one read (rapid reset) never reaches a server. A stream or the connection blocked on a zero
/// window past `zero_window_timeout` is reset, or the connection closed.
final class HTTP2Connection: ConnectionHandler, HTTP2SessionDelegate {
    /// Strong, as `ClientSession.worker` (the worker lets go of the connection when it ends): a `let`
    /// of `self` is borrowed, an `unowned(unsafe)` one retained and released at every use.
    let worker: Worker
    let client: Connection
    let slot: ListenerSlot
    /// The generation and listener new streams start on (the worker's current one when it has the
    /// connection's listener slot, else the one the connection came in on).
    private var generation: Generation
    private var listenerIndex: Int
    private var session: HTTP2ServerSession!
    private var streams: HTTP2StreamTable<HTTP2Stream>
    /// The stream found last (nghttp2's callbacks for one stream come in a row: a header block's
    /// fields, its end, its DATA), so most lookups skip hashing.
    private var lastFound: HTTP2Stream?
    /// Closed streams nothing else refers to, for the next streams (at most as many as may run at once).
    private var spareStreams: [HTTP2Stream] = []
    /// Lanes waiting for their next stream, the one given back last at the end (see HTTP2Lane).
    private var idleLanes: [HTTP2Lane] = []
    /// Builds the head of the header block being received (one at a time on a connection), and
    /// the buffer it is written through.
    private let requestHead: HTTP2RequestHead
    private var headScratch = ByteBuilder(capacity: 1024)
    /// Streams whose head arrived in the input being processed: started once it is all processed.
    private var toStart: [HTTP2Stream] = []
    /// Streams whose session side changed: translated at the next flush.
    private var dirty: [HTTP2Stream] = []
    /// The batch of `dirty` being translated, and of `toStart` being started (swapped in, so that
    /// neither list is copied and both keep their buffers).
    private var translating: [HTTP2Stream] = []
    private var starting: [HTTP2Stream] = []
    private var flushTimer: LoopTimer!
    private var flushScheduled = false
    private var sweepTimer: LoopTimer!
    private let limits: HTTP2Limits
    private var streamsOpened = 0
    private var goingAway = false
    private var closed = false
    private var idleSinceMs: Int64
    private var glitches: HTTP2Guard
    /// A guard verdict ended the connection: nothing more is read; it closes once the GOAWAY is out.
    private var calming = false
    /// Frames went out since the last zero-window check (a window that is 0 at the check but keeps
    /// opening is progress, not a stall).
    private var sentSinceCheck = false

    /// Takes over `client`, whose TLS handshake chose h2 or whose first bytes are the h2c preface
    /// (left in its input). Returns nil when nghttp2 cannot make a session (the caller closes).
    init?(worker: Worker, client: Connection, generation: Generation, listenerIndex: Int, slot: ListenerSlot) {
        self.worker = worker
        self.client = client
        self.generation = generation
        self.listenerIndex = listenerIndex
        self.slot = slot
        limits = generation.configuration.listeners[listenerIndex].http2Limits
        requestHead = HTTP2RequestHead(maxListBytes: limits.maxHeaderListSize)
        streams = HTTP2StreamTable(concurrent: limits.maxConcurrentStreams)
        idleSinceMs = worker.loop.monotonicMilliseconds
        glitches = HTTP2Guard(limits: HTTP2GuardLimits(generation.configuration.http2Guard), now: Self.nowNs())
        let settings = HTTP2SessionSettings(maxConcurrentStreams: limits.maxConcurrentStreams,
                                            maxHeaderListSize: limits.maxHeaderListSize, maxFrameSize: limits.maxFrameSize)
        guard let session = HTTP2ServerSession(delegate: self, settings: settings) else { return nil }
        self.session = session
        flushTimer = LoopTimer(loop: worker.loop) { [unowned self] in self.flush() }
        sweepTimer = LoopTimer(loop: worker.loop, repeating: true) { [unowned self] in self.sweep() }
        sweepTimer.schedule(milliseconds: 1000)
        client.handler = self
        client.setTimeouts(readMilliseconds: nil, writeMilliseconds: generation.settings.clientIdleMs)
        worker.stats.http2Connections.wrappingIncrement(ordering: .relaxed)
        if client.isTLS {   // an HTTP/1.1 session counts it at its first request; this one never had one
            worker.stats.tlsHandshakes.wrappingIncrement(ordering: .relaxed)
            if client.tlsSessionReused { worker.stats.tlsResumedHandshakes.wrappingIncrement(ordering: .relaxed) }
        }
        if !client.input.isEmpty { connectionReadable(client) } else { scheduleFlush() }
    }

    // MARK: - The client connection

    func connectionReadable(_ connection: Connection) {
        guard !closed else { return }
        if calming { client.input.drainAll(); return }
        if let failure = session.receive(client.input), !failure.stoppedByDelegate {
            // nghttp2 stopped without answering (a flood it detected, a bad preface): GOAWAY and close.
            calmDown(errorCode: failure.isFlood ? HTTP2Guard.enhanceYourCalm : 0x1, reason: failure.reason)
        }
        startReadyStreams()
        flush()
    }

    func connectionWritable(_ connection: Connection) { flush() }

    func connection(_ connection: Connection, event: ConnectionEvent) {
        // End of stream, a failure or a timeout: every stream still open is cut off.
        end(flush: false)
    }

    /// Ends every stream without a GOAWAY: the client is gone or failed.
    private func end(flush: Bool) {
        guard !closed else { return }
        closed = true
        for stream in streams.all { stream.cancel() }
        streams.removeAll()
        spareStreams.removeAll()
        lastFound = nil
        toStart.removeAll()
        dirty.removeAll()
        closeIdleLanes()
        flushTimer.cancel()
        sweepTimer.cancel()
        // Lingering: a GOAWAY after an error must not be lost to the reset unread input would cause.
        if flush { client.closeAfterFlush(linger: true) } else { client.close() }
        worker.http2Ended(self)
    }

    /// Drain or reload: a graceful GOAWAY; the connection ends when its last stream has.
    func goAway() {
        guard !closed, !goingAway else { return }
        goingAway = true
        session.goAway(graceful: true)
        closeIdleLanes()   // no new stream comes
        scheduleFlush()
    }

    // MARK: - Writing

    func scheduleFlush() {
        guard !flushScheduled, !closed else { return }
        flushScheduled = true
        flushTimer.fireSoon()
    }

    /// Translates what the streams' sessions wrote, then writes nghttp2's frames while the client's
    /// output is below the buffer size; closes once the session is finished.
    private func flush() {
        flushScheduled = false
        guard !closed else { return }
        let now = worker.loop.monotonicMilliseconds
        while !dirty.isEmpty {
            swap(&dirty, &translating)   // streams marked meanwhile wait in `dirty` for the next round
            for stream in translating {
                stream.isDirty = false
                stream.translate(nowMs: now)
            }
            translating.removeAll(keepingCapacity: true)
        }
        let limit = generation.settings.bufferBytes
        let before = client.output.count
        guard session.send(into: client.output, limit: limit) else { end(flush: true); return }
        if client.output.count > before { sentSinceCheck = true }
        if session.isFinished || (calming && !session.wantsWrite) { end(flush: true); return }
        // Past the buffer size, read nothing more until the client takes what it has (a client that
        // sends without reading, e.g. a PING flood, stops being read).
        client.setReading(!calming && client.output.count < limit)
    }

    /// Monotonic nanoseconds for the guard.
    private static func nowNs() -> UInt64 { MonotonicTime.nanoseconds() }

    /// Acts on a guard verdict: past the threshold, GOAWAY(ENHANCE_YOUR_CALM) and close. Returns
    /// false when the connection is being closed.
    @discardableResult
    private func obey(_ verdict: HTTP2GuardVerdict) -> Bool {
        guard case .goAway(let reason) = verdict else { return true }
        calmDown(errorCode: HTTP2Guard.enhanceYourCalm, reason: reason.description)
        return false
    }

    /// Ends the connection for the client's behaviour: GOAWAY(`errorCode`, `reason`), every stream
    /// cut off, nothing more read; it closes once the GOAWAY is sent.
    private func calmDown(errorCode: UInt32, reason: String) {
        guard !calming else { return }
        calming = true
        if errorCode == HTTP2Guard.enhanceYourCalm { worker.stats.http2GuardCloses.wrappingIncrement(ordering: .relaxed) }
        worker.log(LogLevel.warning.tag + "weir: http2 \(client.peer.host):\(client.peer.port): GOAWAY \(errorCode == HTTP2Guard.enhanceYourCalm ? "enhance_your_calm" : "protocol_error"): \(reason)")
        session.goAway(graceful: false, errorCode: errorCode, debug: reason)
        for stream in streams.all { stream.cancel() }
        streams.removeAll()
        lastFound = nil
        toStart.removeAll()
        closeIdleLanes()
        client.setReading(false)
        scheduleFlush()
    }

    func markDirty(_ stream: HTTP2Stream) {
        if !stream.isDirty {
            stream.isDirty = true
            dirty.append(stream)
        }
        scheduleFlush()
    }

    // MARK: - For the streams

    /// The most bytes a response head a stream's session writes can take: the server's head at its
    /// limit plus what Weir adds to it.
    var responseHeadLimit: Int { generation.settings.parserLimits.maxHeaderBytes + 64 * 1024 }

    func consume(streamID: Int32, count: Int) {
        session.consume(streamID: streamID, count: count)
        scheduleFlush()
    }

    func consumeConnection(_ count: Int) {
        guard count > 0, !closed else { return }
        session.consumeConnection(count: count)
        scheduleFlush()
    }

    func submitHead(streamID: Int32, status: Int, fields: HTTP2ResponseFields, final: Bool, hasBody: Bool) {
        fields.storage.withUnsafeBytes { storage in
            _ = session.submitHead(streamID: streamID, status: status, count: fields.fields.count,
                                   field: { Self.field(fields, $0, in: storage) }, final: final, hasBody: hasBody)
        }
        scheduleFlush()
    }

    func submitTrailers(streamID: Int32, fields: HTTP2ResponseFields) {
        fields.storage.withUnsafeBytes { storage in
            session.submitTrailers(streamID: streamID, count: fields.fields.count, field: { Self.field(fields, $0, in: storage) })
        }
    }

    /// The `i`-th field of `fields`, pointing into `storage` (its storage's bytes).
    private static func field(_ fields: HTTP2ResponseFields, _ i: Int, in storage: UnsafeRawBufferPointer) -> HTTP2Field {
        let f = fields.fields[i]
        return HTTP2Field(name: UnsafeRawBufferPointer(rebasing: storage[f.name]), value: UnsafeRawBufferPointer(rebasing: storage[f.value]))
    }

    func resumeBody(streamID: Int32) {
        session.resumeBody(streamID: streamID)
        scheduleFlush()
    }

    func reset(streamID: Int32, errorCode: UInt32) {
        session.reset(streamID: streamID, errorCode: errorCode)
        scheduleFlush()
    }

    // MARK: - Lanes

    /// The lane for a new stream: the idle one given back last, or a new one.
    private func acquireLane() -> HTTP2Lane {
        idleLanes.popLast() ?? HTTP2Lane(owner: self, client: client)
    }

    /// A stream's exchange is over: its lane waits for the next stream (at most as many as
    /// streams may run at once), unless no stream comes any more.
    func releaseLane(_ lane: HTTP2Lane) {
        guard !closed, !goingAway, !calming, idleLanes.count < limits.maxConcurrentStreams else { lane.close(); return }
        lane.idleSinceMs = worker.loop.monotonicMilliseconds
        idleLanes.append(lane)
    }

    /// The session of an idle lane closed (its idle timer, a drain).
    func laneClosed(_ lane: HTTP2Lane) {
        if let i = idleLanes.firstIndex(where: { $0 === lane }) { idleLanes.remove(at: i) }
    }

    private func closeIdleLanes(idleForMs: Int64? = nil) {
        let now = worker.loop.monotonicMilliseconds
        let closing = idleForMs.map { ms in idleLanes.filter { now - $0.idleSinceMs > ms } } ?? idleLanes
        guard !closing.isEmpty else { return }
        idleLanes.removeAll { lane in closing.contains { $0 === lane } }
        for lane in closing { lane.close() }
    }

    /// Idle lanes unused this long are closed (the burst that needed them is over).
    static let laneIdleMs: Int64 = 5_000

    // MARK: - Streams

    private func startReadyStreams() {
        guard !toStart.isEmpty else { return }
        swap(&toStart, &starting)
        defer { starting.removeAll(keepingCapacity: true) }
        adoptCurrentGeneration()
        for stream in starting where streams[stream.id] === stream {
            guard let lane = stream.lane else { continue }
            if lane.session == nil {
                lane.session = ClientSession(worker: worker, generation: generation, client: lane.connection,
                                             listenerIndex: listenerIndex, slot: slot, http2Lane: lane)
            }
            worker.stats.http2Streams.wrappingIncrement(ordering: .relaxed)
            stream.start()
        }
    }

    /// After a reload: new streams start on the worker's current generation, if it still has the listener.
    private func adoptCurrentGeneration() {
        let current = worker.generation
        guard current !== generation, let index = current.listenerIndex(of: slot) else { return }
        generation = current
        listenerIndex = index
    }

    /// Every second: resets streams idle past the stream idle timeout; ends a connection without
    /// streams idle past the client idle timeout (with a GOAWAY).
    private func sweep() {
        guard !closed else { return }
        checkWindows()
        let now = worker.loop.monotonicMilliseconds
        let idleLimit = limits.streamIdleTimeout.milliseconds
        for stream in streams.all {
            if now - stream.lastActivityMs > idleLimit {
                session.reset(streamID: stream.id, errorCode: 0x8)   // CANCEL
            } else if stream.uploadStalled(nowMs: now, ms: 1000) {
                stream.stopUpload()   // RST_STREAM(NO_ERROR) after a complete response
            }
        }
        if streams.isEmpty {
            if now - idleSinceMs > generation.settings.clientIdleMs { goAway() }
        }
        closeIdleLanes(idleForMs: Self.laneIdleMs)
        scheduleFlush()
    }

    /// Zero-window stalls: a stream whose response waits on its own window past the timeout is
    /// reset; response data waiting on the connection window past it ends the connection.
    private func checkWindows() {
        let now = Self.nowNs()
        defer { sentSinceCheck = false }
        var waiting = false
        for stream in streams.all where stream.hasResponseWaiting {
            waiting = true
            if session.streamSendWindow(stream.id) > 0 { stream.blockedSinceNs = nil; continue }
            let since = stream.blockedSinceNs ?? now
            stream.blockedSinceNs = since
            if HTTP2Guard.isStalled(blockedSince: since, now: now, limits: glitches.limits) {
                session.reset(streamID: stream.id, errorCode: 0x8)   // CANCEL
            }
        }
        if waiting && !sentSinceCheck && session.sendWindow <= 0 { glitches.sendBlocked(now: now) } else { glitches.sendProgressed() }
        obey(glitches.checkStall(now: now))
    }

    private func stream(_ id: Int32) -> HTTP2Stream? {
        if let last = lastFound, last.id == id { return last }
        lastFound = streams[id]
        return lastFound
    }

    private func forget(_ id: Int32) -> HTTP2Stream? {
        if lastFound?.id == id { lastFound = nil }
        return streams.remove(id)
    }

    // MARK: - HTTP2SessionDelegate

    func http2FrameHeader(type: UInt8, flags: UInt8, length: Int, streamID: Int32) -> Bool {
        guard !calming else { return false }
        return obey(glitches.frameHeader(type: type, flags: flags, length: length, now: Self.nowNs()))
    }

    func http2StreamReset(streamID: Int32, errorCode: UInt32) {
        let started = stream(streamID)?.responseStarted ?? true
        obey(glitches.clientReset(responseStarted: started, now: Self.nowNs()))
    }

    func http2BeginHeaders(streamID: Int32, isRequest: Bool) {
        guard isRequest else { stream(streamID)?.beginTrailers(); return }
        requestHead.reset()
        let now = worker.loop.monotonicMilliseconds
        let stream: HTTP2Stream
        if let spare = spareStreams.popLast() {
            spare.reuse(id: streamID, nowMs: now)
            stream = spare
        } else {
            stream = HTTP2Stream(id: streamID, owner: self, nowMs: now)
        }
        streams.insert(stream)
        streamsOpened += 1
        if streamsOpened >= limits.maxRequests { goAway() }
    }

    func http2Header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard let stream = stream(streamID) else { return }
        if stream.inTrailers { stream.addTrailer(name: name, value: value) } else { requestHead.add(name: name, value: value) }
    }

    func http2HeadersComplete(streamID: Int32, endStream: Bool) {
        guard let stream = stream(streamID) else { return }
        if stream.inTrailers {
            stream.requestEnded()
            return
        }
        do {
            let chunked = try requestHead.head(endStream: endStream, into: &headScratch)
            stream.headComplete(headScratch.bytes, chunked: chunked, isHEAD: requestHead.isHEAD, endStream: endStream,
                                lane: acquireLane)
            toStart.append(stream)
        } catch {
            stream.refuse(error)
        }
        scheduleFlush()
    }

    func http2Data(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = stream(streamID) else { session.consumeConnection(count: bytes.count); return }
        stream.body(bytes, nowMs: worker.loop.monotonicMilliseconds)
    }

    func http2DataEnded(streamID: Int32) { stream(streamID)?.requestEnded() }

    func http2WindowUpdate(streamID: Int32, increment: Int) {
        let blocking = streamID == 0 ? session.sendWindow <= increment : (stream(streamID).map { $0.blockedSinceNs != nil } ?? false)
        obey(glitches.windowUpdate(increment: increment, wasBlocking: blocking, now: Self.nowNs()))
        scheduleFlush()
    }

    /// nghttp2 reset a stream (or will end the connection) because of the client's frame: MadeYouReset.
    func http2InvalidFrame(streamID: Int32, type: UInt8) {
        // nghttp2 resets the stream: it must not reach (or keep) a server meanwhile.
        if let stream = forget(streamID) { stream.cancel() }
        obey(glitches.provokedReset(now: Self.nowNs()))
    }

    func http2StreamClosed(streamID: Int32, errorCode: UInt32) {
        guard var stream = forget(streamID) else { return }
        if errorCode == 0 { glitches.streamCompleted(now: Self.nowNs()) }
        stream.cancel()
        if streams.isEmpty { idleSinceMs = worker.loop.monotonicMilliseconds }
        // Kept only when this is its last reference: one still waiting to be translated or started
        // (in `dirty`, `toStart`) is not, and goes when those lists let go of it.
        if !closed, spareStreams.count < limits.maxConcurrentStreams, isKnownUniquelyReferenced(&stream) {
            spareStreams.append(stream)
        }
    }

    func http2ResponseEndedEarly(streamID: Int32) { stream(streamID)?.responseEndedEarly() }

    func http2Body(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyChunk {
        guard let stream = stream(streamID) else { return .bytes(0, last: true, trailers: false) }
        return stream.nextBody(into: buffer)
    }
}

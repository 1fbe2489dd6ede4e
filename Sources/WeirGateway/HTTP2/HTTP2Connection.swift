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
final class HTTP2Connection: ConnectionHandler, HTTP2SessionDelegate {
    unowned(unsafe) let worker: Worker
    let client: Connection
    let slot: ListenerSlot
    /// The generation and listener new streams start on (the worker's current one when it has the
    /// connection's listener slot, else the one the connection came in on).
    private var generation: Generation
    private var listenerIndex: Int
    private var session: HTTP2ServerSession!
    private var streams: [Int32: HTTP2Stream] = [:]
    /// Streams whose head arrived in the input being processed: started once it is all processed.
    private var toStart: [HTTP2Stream] = []
    /// Streams whose session side changed: translated at the next flush.
    private var dirty: [HTTP2Stream] = []
    private var flushTimer: LoopTimer!
    private var flushScheduled = false
    private var sweepTimer: LoopTimer!
    private let limits: HTTP2Limits
    private var streamsOpened = 0
    private var goingAway = false
    private var closed = false
    private var idleSinceMs: Int64

    /// Takes over `client`, whose TLS handshake chose h2 or whose first bytes are the h2c preface
    /// (left in its input). Returns nil when nghttp2 cannot make a session (the caller closes).
    init?(worker: Worker, client: Connection, generation: Generation, listenerIndex: Int, slot: ListenerSlot) {
        self.worker = worker
        self.client = client
        self.generation = generation
        self.listenerIndex = listenerIndex
        self.slot = slot
        limits = generation.configuration.listeners[listenerIndex].http2Limits
        idleSinceMs = worker.loop.monotonicMilliseconds
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
        if let failure = session.receive(client.input) {
            worker.log(LogLevel.info.tag + "weir: http2 \(client.peer.host):\(client.peer.port): \(failure)")
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
        for stream in streams.values { stream.cancel() }
        streams.removeAll()
        toStart.removeAll()
        dirty.removeAll()
        flushTimer.cancel()
        sweepTimer.cancel()
        if flush { client.closeAfterFlush(linger: false) } else { client.close() }
        worker.http2Ended(self)
    }

    /// Drain or reload: a graceful GOAWAY; the connection ends when its last stream has.
    func goAway() {
        guard !closed, !goingAway else { return }
        goingAway = true
        session.goAway(graceful: true)
        scheduleFlush()
    }

    // MARK: - Writing

    func scheduleFlush() {
        guard !flushScheduled, !closed else { return }
        flushScheduled = true
        flushTimer.schedule(milliseconds: 0)
    }

    /// Translates what the streams' sessions wrote, then writes nghttp2's frames while the client's
    /// output is below the buffer size; closes once the session is finished.
    private func flush() {
        flushScheduled = false
        guard !closed else { return }
        let now = worker.loop.monotonicMilliseconds
        while !dirty.isEmpty {
            let batch = dirty
            dirty.removeAll(keepingCapacity: true)
            for stream in batch { stream.translate(nowMs: now) }
        }
        let limit = generation.settings.bufferBytes
        guard session.send(into: client.output, limit: limit) else { end(flush: true); return }
        if session.isFinished { end(flush: true); return }
        // Past the buffer size, read nothing more until the client takes what it has (a client that
        // sends without reading, e.g. a PING flood, stops being read).
        client.setReading(client.output.count < limit)
    }

    func markDirty(_ stream: HTTP2Stream) {
        if !dirty.contains(where: { $0 === stream }) { dirty.append(stream) }
        scheduleFlush()
    }

    // MARK: - For the streams

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
            let list = fields.fields.map {
                HTTP2Field(name: UnsafeRawBufferPointer(rebasing: storage[$0.name]), value: UnsafeRawBufferPointer(rebasing: storage[$0.value]))
            }
            _ = session.submitHead(streamID: streamID, status: status, fields: list, final: final, hasBody: hasBody)
        }
        scheduleFlush()
    }

    func submitTrailers(streamID: Int32, fields: HTTP2ResponseFields) {
        fields.storage.withUnsafeBytes { storage in
            let list = fields.fields.map {
                HTTP2Field(name: UnsafeRawBufferPointer(rebasing: storage[$0.name]), value: UnsafeRawBufferPointer(rebasing: storage[$0.value]))
            }
            session.submitTrailers(streamID: streamID, fields: list)
        }
    }

    func resumeBody(streamID: Int32) {
        session.resumeBody(streamID: streamID)
        scheduleFlush()
    }

    func reset(streamID: Int32, errorCode: UInt32) {
        session.reset(streamID: streamID, errorCode: errorCode)
        scheduleFlush()
    }

    // MARK: - Streams

    private func startReadyStreams() {
        guard !toStart.isEmpty else { return }
        let ready = toStart
        toStart.removeAll(keepingCapacity: true)
        adoptCurrentGeneration()
        for stream in ready where streams[stream.id] === stream {
            guard let connection = stream.connection else { continue }
            let session = ClientSession(worker: worker, generation: generation, client: connection,
                                        listenerIndex: listenerIndex, slot: slot, http2Stream: true)
            worker.stats.http2Streams.wrappingIncrement(ordering: .relaxed)
            stream.start(session)
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
        let now = worker.loop.monotonicMilliseconds
        let idleLimit = limits.streamIdleTimeout.milliseconds
        for stream in streams.values where now - stream.lastActivityMs > idleLimit {
            session.reset(streamID: stream.id, errorCode: 0x8)   // CANCEL
        }
        if streams.isEmpty {
            if now - idleSinceMs > generation.settings.clientIdleMs { goAway() }
        }
        scheduleFlush()
    }

    // MARK: - HTTP2SessionDelegate

    func http2FrameHeader(type: UInt8, flags: UInt8, length: Int, streamID: Int32) -> Bool { true }

    func http2BeginHeaders(streamID: Int32, isRequest: Bool) {
        guard isRequest else { streams[streamID]?.beginTrailers(); return }
        let stream = HTTP2Stream(id: streamID, owner: self, maxHeaderListBytes: limits.maxHeaderListSize,
                                 nowMs: worker.loop.monotonicMilliseconds)
        streams[streamID] = stream
        streamsOpened += 1
        if streamsOpened >= limits.maxRequests { goAway() }
    }

    func http2Header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        streams[streamID]?.addField(name: name, value: value)
    }

    func http2HeadersComplete(streamID: Int32, endStream: Bool) {
        guard let stream = streams[streamID] else { return }
        if stream.inTrailers {
            stream.requestEnded()
            return
        }
        if stream.headComplete(endStream: endStream, loop: worker.loop, client: client) {
            toStart.append(stream)
        }
        scheduleFlush()
    }

    func http2Data(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID] else { session.consumeConnection(count: bytes.count); return }
        stream.body(bytes, nowMs: worker.loop.monotonicMilliseconds)
    }

    func http2DataEnded(streamID: Int32) { streams[streamID]?.requestEnded() }

    func http2WindowUpdate(streamID: Int32, increment: Int) { scheduleFlush() }

    func http2InvalidFrame(streamID: Int32, type: UInt8) {}

    func http2StreamClosed(streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        stream.cancel()
        if streams.isEmpty { idleSinceMs = worker.loop.monotonicMilliseconds }
    }

    func http2Body(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyChunk {
        guard let stream = streams[streamID] else { return .bytes(0, last: true, trailers: false) }
        return stream.nextBody(into: buffer)
    }
}

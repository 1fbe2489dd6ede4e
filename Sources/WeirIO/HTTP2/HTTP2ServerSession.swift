import CNghttp2

/// The SETTINGS a server session announces, and the connection window it opens.
public struct HTTP2SessionSettings: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: nghttp2 refuses streams beyond it (REFUSED_STREAM).
    public var maxConcurrentStreams: Int
    /// SETTINGS_MAX_HEADER_LIST_SIZE (advisory for the client; the delegate enforces it).
    public var maxHeaderListSize: Int
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload the client may send.
    public var maxFrameSize: Int
    /// SETTINGS_INITIAL_WINDOW_SIZE: what a client may send on a stream before Weir consumed it.
    public var initialStreamWindow: Int
    /// The connection-level receive window (the whole connection's unconsumed request bodies).
    public var connectionWindow: Int

    public init(maxConcurrentStreams: Int = 100, maxHeaderListSize: Int = 65536, maxFrameSize: Int = 16384,
                initialStreamWindow: Int = 256 * 1024, connectionWindow: Int = 4 * 1024 * 1024) {
        self.maxConcurrentStreams = maxConcurrentStreams
        self.maxHeaderListSize = maxHeaderListSize
        self.maxFrameSize = maxFrameSize
        self.initialStreamWindow = initialStreamWindow
        self.connectionWindow = connectionWindow
    }
}

/// What the delegate's body source answers when nghttp2 asks for a response's next DATA bytes.
public enum HTTP2BodyChunk {
    /// `count` bytes were copied; `last`: the body ends with them; `trailers`: a trailer section
    /// follows (the delegate submits it right after), so the last DATA frame does not end the stream.
    case bytes(Int, last: Bool, trailers: Bool)
    /// Nothing to send yet: the delegate calls `resumeBody` when it has more.
    case later
}

/// Receives what an `HTTP2ServerSession` decodes, on the loop's thread, from inside `receive`.
/// Header names and values are views valid only during the call.
public protocol HTTP2SessionDelegate: AnyObject {
    /// A frame header, before its payload is processed (every frame). Return false to stop processing
    /// the input (the delegate has submitted a GOAWAY).
    func http2FrameHeader(type: UInt8, flags: UInt8, length: Int, streamID: Int32) -> Bool
    /// A HEADERS frame opens a request stream (`isRequest`) or begins a trailer section.
    func http2BeginHeaders(streamID: Int32, isRequest: Bool)
    /// One field of the current header block (pseudo-headers first; nghttp2 has checked RFC 9113 §8.2
    /// and §8.3: lower case, no connection-specific fields, pseudo-header order and presence).
    func http2Header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
    /// The header block ended (END_HEADERS); `endStream`: no body follows.
    func http2HeadersComplete(streamID: Int32, endStream: Bool)
    /// Request body bytes of a stream (DATA payload, padding removed).
    func http2Data(streamID: Int32, bytes: UnsafeRawBufferPointer)
    /// A DATA frame ended the stream's request body.
    func http2DataEnded(streamID: Int32)
    /// A WINDOW_UPDATE (streamID 0: the connection's window).
    func http2WindowUpdate(streamID: Int32, increment: Int)
    /// The client reset a stream (RST_STREAM); `http2StreamClosed` follows.
    func http2StreamReset(streamID: Int32, errorCode: UInt32)
    /// nghttp2 rejected a frame on a stream (it resets the stream or ends the connection itself).
    func http2InvalidFrame(streamID: Int32, type: UInt8)
    /// The stream is gone; `errorCode` 0 after a complete exchange, else the RST_STREAM or GOAWAY code.
    func http2StreamClosed(streamID: Int32, errorCode: UInt32)
    /// The next bytes of a response body into `buffer` (at most its size).
    func http2Body(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyChunk
    /// A response's END_STREAM was sent while the client's request body is still open (RFC 9113 §8.1:
    /// the server may then RST_STREAM(NO_ERROR) to stop the upload).
    func http2ResponseEndedEarly(streamID: Int32)
}

extension HTTP2SessionDelegate {
    public func http2ResponseEndedEarly(streamID: Int32) {}
}

/// Why `HTTP2ServerSession.receive` stopped: the connection must end (after a GOAWAY).
public struct HTTP2ReceiveFailure: Error, Sendable {
    /// nghttp2's description of the error.
    public var reason: String
    /// The client flooded the session (too many CONTINUATION frames, or queued frames it does not
    /// read): answer ENHANCE_YOUR_CALM.
    public var isFlood: Bool
    /// A delegate callback asked to stop (it has submitted its own GOAWAY).
    public var stoppedByDelegate: Bool
}

/// One field of a header block to send: names must be lower case.
public struct HTTP2Field {
    public var name: UnsafeRawBufferPointer
    public var value: UnsafeRawBufferPointer
    public init(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        self.name = name
        self.value = value
    }
}

/// A server-side HTTP/2 session over libnghttp2's memory API: the owner feeds it the bytes read
/// from the client (`receive`) and writes what it produces (`send`). Frames, HPACK, stream states,
/// flow-control windows and most of RFC 9113's checks are nghttp2's; the delegate gets requests and
/// supplies responses. Request bodies are consumed explicitly (`consume`): the client's window
/// opens only as fast as the bytes move on. Use on one loop's thread.
public final class HTTP2ServerSession {
    private var session: OpaquePointer?
    /// The name/value list of the head being submitted (written in place, its memory kept from one
    /// head to the next; nghttp2 copies the list it is given). `nameValueCapacity` entries.
    private var nameValues = UnsafeMutablePointer<nghttp2_nv>.allocate(capacity: 16)
    private var nameValueCapacity = 16
    /// unowned(unsafe): the delegate owns the session and calls every method that runs a callback; a
    /// checked unowned reference costs an atomic retain and release per callback (several per frame).
    private unowned(unsafe) let delegate: HTTP2SessionDelegate
    /// Creates the session and queues its SETTINGS; nghttp2 allocates from the thread's free lists
    /// (`ThreadMemory.http2Allocator`). Returns nil when nghttp2 cannot allocate it.
    public init?(delegate: HTTP2SessionDelegate, settings: HTTP2SessionSettings) {
        self.delegate = delegate
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else { return nil }
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.install(callbacks)
        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else { return nil }
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        // Closed streams are not kept for priority (RFC 9113 deprecates it): less memory per stream.
        nghttp2_option_set_no_closed_streams(option, 1)
        // Debian's back-ported rapid-reset limit counts every RST_STREAM (1000, then 33 a second) and
        // ends the session with INTERNAL_ERROR: it cuts off clients that cancel streams whose response
        // is under way (browsers, curl). The caller's guard counts only resets before a response, with
        // credit for completed streams; the library's limit stays only as a far backstop.
        nghttp2_option_set_stream_reset_rate_limit(option, 1_000_000, 100_000)
        var made: OpaquePointer?
        var allocator = ThreadMemory.http2Allocator
        guard nghttp2_session_server_new3(&made, callbacks, Unmanaged.passUnretained(self).toOpaque(), option, &allocator) == 0,
              let made else { return nil }
        session = made
        var entries = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(settings.maxConcurrentStreams)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(settings.maxHeaderListSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: UInt32(settings.maxFrameSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(settings.initialStreamWindow)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
        ]
        _ = nghttp2_submit_settings(made, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
        _ = nghttp2_session_set_local_window_size(made, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(settings.connectionWindow))
    }

    deinit {
        if let session { nghttp2_session_del(session) }
        nameValues.deallocate()
    }

    /// Processes the client's bytes in `input` and drains them. Returns nil, or why the connection
    /// must end now (nghttp2 queued a GOAWAY for protocol errors it detects itself; for a failure it
    /// does not answer, the caller submits one with `goAway`).
    public func receive(_ input: Buffer) -> HTTP2ReceiveFailure? {
        guard let session else { return HTTP2ReceiveFailure(reason: "session closed", isFlood: false, stoppedByDelegate: false) }
        while !input.isEmpty {
            let rc = input.withFirstSegment { bytes in
                nghttp2_session_mem_recv(session, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count)
            }
            if rc < 0 {
                input.drainAll()
                let code = Int32(rc)
                return HTTP2ReceiveFailure(reason: String(cString: nghttp2_strerror(code)),
                                           isFlood: code == NGHTTP2_ERR_FLOODED.rawValue || code == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue,
                                           stoppedByDelegate: code == NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
            }
            if rc == 0 { break }
            input.drain(rc)
        }
        return nil
    }

    /// Appends the frames ready to go to `output` until it holds at least `limit` bytes or nothing is
    /// left. Returns false on a fatal error (the connection must close).
    public func send(into output: Buffer, limit: Int) -> Bool {
        guard let session else { return false }
        while output.count < limit {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &data)
            if n < 0 { return false }
            guard n > 0, let data else { break }
            output.append(UnsafeRawBufferPointer(start: data, count: n))
        }
        return true
    }

    /// Whether the session still wants to read or has something to write; when neither, the
    /// connection is done (after a GOAWAY both ways, or a fatal error).
    public var isFinished: Bool {
        guard let session else { return true }
        return nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
    }

    /// Whether frames are waiting to be sent.
    public var wantsWrite: Bool { session.map { nghttp2_session_want_write($0) != 0 } ?? false }

    /// Submits a response head. `status` is 100...999; `count` fields, the i-th given by `field(i)`
    /// (valid during the call: nghttp2 copies them), lower-cased, without connection-specific ones;
    /// `final`: a final response (else an interim 1xx); `hasBody`: DATA follows, taken from the
    /// delegate's `http2Body`. Returns false when nghttp2 refused (the stream is gone).
    public func submitHead(streamID: Int32, status: Int, count: Int, field: (Int) -> HTTP2Field, final: Bool,
                           hasBody: Bool) -> Bool {
        guard let session, (100...999).contains(status) else { return false }
        var digits: (UInt8, UInt8, UInt8) = (UInt8(48 + status / 100), UInt8(48 + status / 10 % 10), UInt8(48 + status % 10))
        return withUnsafeBytes(of: &digits) { statusBytes in
            let n = fillNameValues(count: count, field: field, status: statusBytes)
            if !final {
                return nghttp2_submit_headers(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, nil, nameValues, n, nil) >= 0
            }
            guard hasBody else { return nghttp2_submit_response(session, streamID, nameValues, n, nil) == 0 }
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Self.readBody)
            return nghttp2_submit_response(session, streamID, nameValues, n, &provider) == 0
        }
    }

    /// Submits a trailer section ending the stream (after the body's last DATA, sent without END_STREAM):
    /// `count` fields, the i-th given by `field(i)`, as for `submitHead`.
    public func submitTrailers(streamID: Int32, count: Int, field: (Int) -> HTTP2Field) {
        guard let session else { return }
        let n = fillNameValues(count: count, field: field, status: nil)
        _ = nghttp2_submit_trailer(session, streamID, nameValues, n)
    }

    /// Writes `:status` (if given) and the fields into `nameValues` (grown if they do not fit) and
    /// returns how many entries it wrote.
    private func fillNameValues(count: Int, field: (Int) -> HTTP2Field, status: UnsafeRawBufferPointer?) -> Int {
        let total = count + (status == nil ? 0 : 1)
        if total > nameValueCapacity {
            nameValues.deallocate()
            nameValueCapacity = max(total, nameValueCapacity * 2)
            nameValues = .allocate(capacity: nameValueCapacity)
        }
        var out = nameValues
        if let status {
            out.initialize(to: Self.nv(UnsafeRawBufferPointer(start: Self.statusName.utf8Start, count: 7), status))
            out += 1
        }
        for i in 0..<count {
            let f = field(i)
            out.initialize(to: Self.nv(f.name, f.value))
            out += 1
        }
        return total
    }

    /// The delegate has more body bytes for a stream whose source answered `.later`.
    public func resumeBody(streamID: Int32) {
        guard let session else { return }
        _ = nghttp2_session_resume_data(session, streamID)
    }

    /// Resets a stream with `errorCode` (RFC 9113 §7: 0x2 INTERNAL_ERROR, 0x8 CANCEL, 0x7 REFUSED_STREAM...).
    public func reset(streamID: Int32, errorCode: UInt32) {
        guard let session else { return }
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// `count` request body bytes of a stream moved on: opens the client's stream and connection
    /// windows by as much (a stream already closed: the connection window only).
    public func consume(streamID: Int32, count: Int) {
        guard let session, count > 0 else { return }
        if nghttp2_session_consume(session, streamID, count) != 0 {
            _ = nghttp2_session_consume_connection(session, count)
        }
    }

    /// Body bytes of a stream no one will read (closed, refused): opens the connection window again.
    public func consumeConnection(count: Int) {
        guard let session, count > 0 else { return }
        _ = nghttp2_session_consume_connection(session, count)
    }

    /// Sends GOAWAY. `graceful`: streams the client opened so far finish and later ones are refused
    /// (NO_ERROR); otherwise `errorCode` and `debug` text (the caller stops feeding `receive` and
    /// closes once it is sent).
    public func goAway(graceful: Bool, errorCode: UInt32 = 0, debug: String = "") {
        guard let session else { return }
        let last = nghttp2_session_get_last_proc_stream_id(session)
        var text = Array(debug.utf8)
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, graceful ? 0 : errorCode, &text, text.count)
    }

    /// How many bytes the client lets Weir send on a stream now (0 or less: blocked on its window).
    public func streamSendWindow(_ streamID: Int32) -> Int {
        session.map { Int(nghttp2_session_get_stream_remote_window_size($0, streamID)) } ?? 0
    }

    /// How many bytes the client lets Weir send on the connection now (its connection window).
    public var sendWindow: Int { session.map { Int(nghttp2_session_get_remote_window_size($0)) } ?? 0 }

    // MARK: - Callbacks

    private static let statusName: StaticString = ":status"

    private static func nv(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> nghttp2_nv {
        nghttp2_nv(name: UnsafeMutablePointer(mutating: name.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? Self.empty),
                   value: UnsafeMutablePointer(mutating: value.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? Self.empty),
                   namelen: name.count, valuelen: value.count, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
    }

    nonisolated(unsafe) private static let empty: UnsafePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        p.pointee = 0
        return UnsafePointer(p)
    }()

    private static func me(_ userData: UnsafeMutableRawPointer?) -> HTTP2ServerSession {
        Unmanaged<HTTP2ServerSession>.fromOpaque(userData!).takeUnretainedValue()
    }

    private static let readBody: nghttp2_data_source_read_callback = { _, streamID, buf, length, flags, _, userData in
        let me = HTTP2ServerSession.me(userData)
        switch me.delegate.http2Body(streamID: streamID, into: UnsafeMutableRawBufferPointer(start: buf, count: length)) {
        case .later:
            return ssize_t(NGHTTP2_ERR_DEFERRED.rawValue)
        case .bytes(let n, let last, let trailers):
            if last {
                flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
                if trailers { flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue) }
            }
            return n
        }
    }

    private static func install(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks) { _, hd, userData in
            let h = hd!.pointee
            return HTTP2ServerSession.me(userData).delegate.http2FrameHeader(type: h.type, flags: h.flags, length: h.length, streamID: h.stream_id)
                ? 0 : Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            let f = frame!.pointee
            if f.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) {
                HTTP2ServerSession.me(userData).delegate.http2BeginHeaders(streamID: f.hd.stream_id, isRequest: f.headers.cat == NGHTTP2_HCAT_REQUEST)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
            HTTP2ServerSession.me(userData).delegate.http2Header(streamID: frame!.pointee.hd.stream_id,
                                              name: UnsafeRawBufferPointer(start: name, count: nameLength),
                                              value: UnsafeRawBufferPointer(start: value, count: valueLength))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            let f = frame!.pointee
            let delegate = HTTP2ServerSession.me(userData).delegate
            let endStream = f.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            switch UInt32(f.hd.type) {
            case NGHTTP2_HEADERS.rawValue:
                delegate.http2HeadersComplete(streamID: f.hd.stream_id, endStream: endStream)
            case NGHTTP2_DATA.rawValue where endStream:
                delegate.http2DataEnded(streamID: f.hd.stream_id)
            case NGHTTP2_RST_STREAM.rawValue:
                delegate.http2StreamReset(streamID: f.hd.stream_id, errorCode: f.rst_stream.error_code)
            case NGHTTP2_WINDOW_UPDATE.rawValue:
                delegate.http2WindowUpdate(streamID: f.hd.stream_id, increment: Int(f.window_update.window_size_increment))
            default:
                break
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            HTTP2ServerSession.me(userData).delegate.http2Data(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks) { _, frame, _, userData in
            let f = frame!.pointee
            HTTP2ServerSession.me(userData).delegate.http2InvalidFrame(streamID: f.hd.stream_id, type: f.hd.type)
            return 0
        }
        // A response's last frame went out while its request is still open (an early answer: a redirect,
        // a 413, a server that did not read the body): the delegate decides when to ask the client to stop.
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { session, frame, userData in
            let h = frame!.pointee.hd
            let endsStream = (h.type == UInt8(NGHTTP2_HEADERS.rawValue) || h.type == UInt8(NGHTTP2_DATA.rawValue))
                && h.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            if endsStream, h.stream_id > 0, nghttp2_session_get_stream_remote_close(session, h.stream_id) == 0 {
                HTTP2ServerSession.me(userData).delegate.http2ResponseEndedEarly(streamID: h.stream_id)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            HTTP2ServerSession.me(userData).delegate.http2StreamClosed(streamID: streamID, errorCode: errorCode)
            return 0
        }
    }
}

// HTTP/2 on the client side (issue 14): per-listener switches and limits.

/// `[[listener]]` HTTP/2 limits, the `http2_*` keys. The defaults are safe for an edge gateway.
public struct HTTP2Limits: Sendable, Equatable {
    /// `http2_max_concurrent_streams`: streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    /// Range 1...1000. Default 100.
    public var maxConcurrentStreams: Int
    /// `http2_max_header_list_size`: bytes of one header list (names + values + 32 per field, RFC 9113 §6.5.2);
    /// a larger one is refused. Range 1024...1_048_576. Default 65536.
    public var maxHeaderListSize: Int
    /// `http2_max_frame_size`: the largest frame payload we accept (SETTINGS_MAX_FRAME_SIZE).
    /// Range 16384...16777215. Default 16384.
    public var maxFrameSize: Int
    /// `http2_stream_idle_timeout`: a stream with nothing received or sent for this long is reset. Default 60s.
    public var streamIdleTimeout: Duration
    /// `http2_max_requests`: streams one connection may open; then a graceful GOAWAY ends it (the client
    /// reconnects). Range 1...10_000_000. Default 10000.
    public var maxRequests: Int

    public init(maxConcurrentStreams: Int = 100, maxHeaderListSize: Int = 65536, maxFrameSize: Int = 16384,
                streamIdleTimeout: Duration = .seconds(60), maxRequests: Int = 10000) {
        self.maxConcurrentStreams = maxConcurrentStreams
        self.maxHeaderListSize = maxHeaderListSize
        self.maxFrameSize = maxFrameSize
        self.streamIdleTimeout = streamIdleTimeout
        self.maxRequests = maxRequests
    }
}

extension Schema {
    /// The `[[listener]]` keys of HTTP/2: `http2` (ALPN h2 on a TLS listener, default true), `h2c` (prior
    /// knowledge on a plain listener, default false) and the `http2_*` limits.
    static var listenerHTTP2Keys: [KeySpec<ListenerDraft>] {
        [
            .key("http2", .boolean, \.listener.http2),
            .key("h2c", .boolean, \.listener.h2c),
            .key("http2_max_concurrent_streams", .integer(1...1000), \.listener.http2Limits.maxConcurrentStreams),
            .key("http2_max_header_list_size", .integer(1024...1_048_576), \.listener.http2Limits.maxHeaderListSize),
            .key("http2_max_frame_size", .integer(16384...16_777_215), \.listener.http2Limits.maxFrameSize),
            .key("http2_stream_idle_timeout", .duration(), \.listener.http2Limits.streamIdleTimeout),
            .key("http2_max_requests", .integer(1...10_000_000), \.listener.http2Limits.maxRequests),
        ]
    }
}

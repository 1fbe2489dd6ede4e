// `[http2]`: the thresholds of the HTTP/2 attack guard (WeirHTTP's HTTP2Guard; README "HTTP/2 attack limits").
// Kept apart from WeirHTTP's `HTTP2GuardLimits` because WeirConfig does not depend on WeirHTTP; the gateway
// copies one into the other.

/// `[http2]` (once per configuration): how much useless work one HTTP/2 client connection may cause before
/// Weir closes it with GOAWAY(ENHANCE_YOUR_CALM). Every default is safe for browsers and curl.
public struct HTTP2GuardSettings: Sendable, Equatable {
    /// `glitch_threshold`: glitch score past which the connection is closed; 0 turns the count off.
    /// Range 0...1_000_000. Default 1000.
    public var glitchThreshold: Int
    /// `glitch_decay_per_second`: glitches forgiven per second. Range 0...100_000. Default 30.
    public var glitchDecayPerSecond: Int
    /// `completed_stream_credit`: glitches forgiven per completed stream. Range 0...1000. Default 1.
    public var completedStreamCredit: Int
    /// `max_header_block_frames`: most HEADERS + CONTINUATION frames in one header block. Range 1...1024.
    /// Default 32.
    public var maxHeaderBlockFrames: Int
    /// `max_header_block_bytes`: most payload bytes in one header block. Range 1024...16_777_216. Default 131072.
    public var maxHeaderBlockBytes: Int
    /// `min_window_increment`: a smaller WINDOW_UPDATE while Weir is blocked on that window is a glitch.
    /// Range 0...65535. Default 256.
    public var minWindowIncrement: Int
    /// `zero_window_timeout`: how long data may wait on a zero peer window. Default 30 seconds.
    public var zeroWindowTimeout: Duration

    public init(glitchThreshold: Int = 1000, glitchDecayPerSecond: Int = 30, completedStreamCredit: Int = 1,
                maxHeaderBlockFrames: Int = 32, maxHeaderBlockBytes: Int = 131_072, minWindowIncrement: Int = 256,
                zeroWindowTimeout: Duration = .seconds(30)) {
        self.glitchThreshold = glitchThreshold
        self.glitchDecayPerSecond = glitchDecayPerSecond
        self.completedStreamCredit = completedStreamCredit
        self.maxHeaderBlockFrames = maxHeaderBlockFrames
        self.maxHeaderBlockBytes = maxHeaderBlockBytes
        self.minWindowIncrement = minWindowIncrement
        self.zeroWindowTimeout = zeroWindowTimeout
    }
}

extension Schema {
    static var http2: TableSpec<HTTP2GuardSettings> {
        TableSpec(header: "[http2]", keys: [
            .key("glitch_threshold", .integer(0...1_000_000), \.glitchThreshold),
            .key("glitch_decay_per_second", .integer(0...100_000), \.glitchDecayPerSecond),
            .key("completed_stream_credit", .integer(0...1000), \.completedStreamCredit),
            .key("max_header_block_frames", .integer(1...1024), \.maxHeaderBlockFrames),
            .key("max_header_block_bytes", .integer(1024...16_777_216), \.maxHeaderBlockBytes),
            .key("min_window_increment", .integer(0...65535), \.minWindowIncrement),
            .key("zero_window_timeout", .duration(), \.zeroWindowTimeout),
        ], defaults: { HTTP2GuardSettings() }, oncePerConfiguration: true, neighbours: { settingsHomes })
    }
}

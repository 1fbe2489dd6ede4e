/// Thresholds of `HTTP2Guard`: how much useless or hostile work one HTTP/2 client connection may cause
/// before Weir closes it with GOAWAY(ENHANCE_YOUR_CALM). Every default is safe for browsers and curl.
public struct HTTP2GuardLimits: Sendable, Equatable {
    /// Glitch score past which the connection is closed. Each glitch (see `HTTP2Glitch`) adds 1; each
    /// completed stream takes `completedStreamCredit` off; time takes `glitchDecayPerSecond` off; the score
    /// never goes below 0 (no reserve is saved up for a later burst). Default 1000. 0 disables the count.
    public var glitchThreshold: Int
    /// Glitches forgiven per second of connection time, so that a slow trickle of PINGs or cancels is never
    /// cut off while a flood is. Default 30 (about nghttp2's reset rate limit). 0: no time decay.
    public var glitchDecayPerSecond: Int
    /// Glitches forgiven per stream whose response was sent completely: a client that cancels about as
    /// many streams as it completes stays at 0, one that resets more than it completes climbs. Default 1.
    public var completedStreamCredit: Int
    /// Most frames (HEADERS + CONTINUATION) in one header block; one more closes the connection before
    /// the frame's payload reaches HPACK. Default 32.
    public var maxHeaderBlockFrames: Int
    /// Most payload bytes in one header block (HEADERS + CONTINUATION, padding included), checked on each
    /// frame header before its payload is decoded. Default 131072 (twice the HTTP/1.1 head limit:
    /// HPACK rarely expands, so a real block is far smaller).
    public var maxHeaderBlockBytes: Int
    /// A WINDOW_UPDATE smaller than this while Weir was blocked on that window counts as a glitch
    /// (a slow drip that makes Weir send tiny DATA frames). An increment of 0 always counts. Default 256.
    public var minUsefulWindowIncrement: Int
    /// How long Weir waits with data to send and a peer window of 0 before it gives up on the stream or
    /// connection (zero-window stall). Nanoseconds. Default 30 seconds.
    public var zeroWindowTimeoutNanoseconds: UInt64

    /// Creates limits. Preconditions: no value is negative.
    public init(glitchThreshold: Int = 1000, glitchDecayPerSecond: Int = 30, completedStreamCredit: Int = 1,
                maxHeaderBlockFrames: Int = 32, maxHeaderBlockBytes: Int = 131_072,
                minUsefulWindowIncrement: Int = 256, zeroWindowTimeoutNanoseconds: UInt64 = 30_000_000_000) {
        self.glitchThreshold = glitchThreshold
        self.glitchDecayPerSecond = glitchDecayPerSecond
        self.completedStreamCredit = completedStreamCredit
        self.maxHeaderBlockFrames = maxHeaderBlockFrames
        self.maxHeaderBlockBytes = maxHeaderBlockBytes
        self.minUsefulWindowIncrement = minUsefulWindowIncrement
        self.zeroWindowTimeoutNanoseconds = zeroWindowTimeoutNanoseconds
    }
}

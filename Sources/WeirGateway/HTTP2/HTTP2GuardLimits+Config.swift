import WeirConfig
import WeirHTTP

extension HTTP2GuardLimits {
    /// The guard's limits from the configuration's `[http2]` table.
    public init(_ settings: HTTP2GuardSettings) {
        let timeout = settings.zeroWindowTimeout.components
        let nanoseconds = UInt64(max(0, timeout.seconds)) &* 1_000_000_000
            &+ UInt64(max(0, timeout.attoseconds / 1_000_000_000))
        self.init(glitchThreshold: settings.glitchThreshold, glitchDecayPerSecond: settings.glitchDecayPerSecond,
                  completedStreamCredit: settings.completedStreamCredit,
                  maxHeaderBlockFrames: settings.maxHeaderBlockFrames,
                  maxHeaderBlockBytes: settings.maxHeaderBlockBytes,
                  minUsefulWindowIncrement: settings.minWindowIncrement,
                  zeroWindowTimeoutNanoseconds: nanoseconds)
    }
}

import Testing
@testable import WeirConfig

/// `[http2]`: the HTTP/2 attack guard's thresholds.
@Suite struct HTTP2GuardConfigTests {
    @Test func defaultsWhenAbsent() throws {
        let config = try parse([("a.toml", baseTOML)])
        #expect(config.http2Guard == HTTP2GuardSettings())
        #expect(config.http2Guard.glitchThreshold == 1000)
        #expect(config.http2Guard.zeroWindowTimeout == .seconds(30))
    }

    @Test func everyKeyIsRead() throws {
        let config = try parse([("a.toml", baseTOML + """
            [http2]
            glitch_threshold = 200
            glitch_decay_per_second = 5
            completed_stream_credit = 2
            max_header_block_frames = 8
            max_header_block_bytes = 16384
            min_window_increment = 1024
            zero_window_timeout = "1s"

            """)])
        #expect(config.http2Guard == HTTP2GuardSettings(
            glitchThreshold: 200, glitchDecayPerSecond: 5, completedStreamCredit: 2, maxHeaderBlockFrames: 8,
            maxHeaderBlockBytes: 16384, minWindowIncrement: 1024, zeroWindowTimeout: .seconds(1)))
    }

    @Test func badValuesNameFileAndKey() {
        let lines = errorLines(appending: "[http2]\nmax_header_block_frames = 0\nglitch_treshold = 5\n")
        #expect(lines.count == 2)
        #expect(lines.contains { $0.contains("a.toml") && $0.contains("http2.max_header_block_frames") })
        #expect(lines.contains { $0.contains("a.toml") && $0.contains("glitch_treshold") })
    }
}

import Testing
@testable import WeirConfig

/// `[[listener]]` HTTP/2 keys: `http2`, `h2c` and the `http2_*` limits.
@Suite struct HTTP2ListenerConfigTests {
    private func listener(_ keys: String) throws -> Listener {
        let toml = baseTOML.replacingOccurrences(of: "address = \"127.0.0.1:8080\"\n", with: "address = \"127.0.0.1:8080\"\n" + keys)
        return try parse([("a.toml", toml)]).listeners[0]
    }

    @Test func defaults() throws {
        let l = try listener("")
        #expect(l.http2 && !l.h2c)
        #expect(l.http2Limits == HTTP2Limits(maxConcurrentStreams: 100, maxHeaderListSize: 65536, maxFrameSize: 16384,
                                             streamIdleTimeout: .seconds(60), maxRequests: 10000))
    }

    @Test func everyKeyIsRead() throws {
        let l = try listener("""
            http2 = false
            h2c = true
            http2_max_concurrent_streams = 8
            http2_max_header_list_size = 4096
            http2_max_frame_size = 32768
            http2_stream_idle_timeout = "5s"
            http2_max_requests = 50

            """)
        #expect(!l.http2 && l.h2c)
        #expect(l.http2Limits == HTTP2Limits(maxConcurrentStreams: 8, maxHeaderListSize: 4096, maxFrameSize: 32768,
                                             streamIdleTimeout: .seconds(5), maxRequests: 50))
    }

    @Test func outOfRangeValuesNameFileAndKey() {
        let toml = baseTOML.replacingOccurrences(of: "address = \"127.0.0.1:8080\"\n",
                                                 with: "address = \"127.0.0.1:8080\"\nhttp2_max_concurrent_streams = 0\nhttp2_max_frame_size = 1024\n")
        let lines = errorLines([("a.toml", toml)])
        #expect(lines.contains { $0.contains("a.toml") && $0.contains("http2_max_concurrent_streams") })
        #expect(lines.contains { $0.contains("a.toml") && $0.contains("http2_max_frame_size") })
    }
}

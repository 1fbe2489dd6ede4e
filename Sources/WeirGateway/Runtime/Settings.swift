import WeirConfig
import WeirHTTP

/// The configuration values the data path reads, converted once to the units it uses.
struct Settings: Sendable {
    let parserLimits: ParserLimits
    let clientHeaderMs: Int64
    let clientIdleMs: Int64
    /// Longest silence of a client in the middle of a request body.
    let clientBodyMs: Int64
    let upstreamConnectMs: Int64
    let upstreamResponseMs: Int64
    let upstreamIdleMs: Int64
    let tunnelIdleMs: Int64
    let drainMs: Int64
    /// High watermark per direction per connection: above it Weir stops reading from the other side.
    let bufferBytes: Int
    let idlePerServer: Int
    let maxConnections: Int
    /// Redirect mode: request body bytes read and dropped before the connection is closed instead.
    let redirectBodyBytes: Int

    init(_ config: WeirConfiguration) {
        parserLimits = ParserLimits(maxRequestLine: config.limits.maxRequestLine,
                                    maxHeaderBytes: config.limits.maxHeaderBytes,
                                    maxHeaderCount: config.limits.maxHeaderCount)
        clientHeaderMs = config.timeouts.clientHeader.milliseconds
        clientIdleMs = config.timeouts.clientIdle.milliseconds
        clientBodyMs = config.timeouts.clientBody.milliseconds
        upstreamConnectMs = config.timeouts.upstreamConnect.milliseconds
        upstreamResponseMs = config.timeouts.upstreamResponse.milliseconds
        upstreamIdleMs = config.timeouts.upstreamIdle.milliseconds
        tunnelIdleMs = config.timeouts.tunnelIdle.milliseconds
        drainMs = config.global.drainTimeout.milliseconds
        bufferBytes = config.limits.bufferBytes
        idlePerServer = config.limits.upstreamIdlePerServer
        maxConnections = config.global.maxConnections
        redirectBodyBytes = config.limits.redirectBodyBytes
    }
}

extension Duration {
    /// Whole milliseconds (rounded down), for timers.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

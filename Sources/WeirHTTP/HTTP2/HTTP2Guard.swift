// The HTTP/2 attack guard: a pure per-connection counter of "glitches", the frames and events that cost
// Weir work and give the client nothing (rapid reset CVE-2023-44487, MadeYouReset CVE-2025-8671, the 2024
// CONTINUATION flood, PING/SETTINGS/PRIORITY/empty-DATA floods, zero-window stalls). Like HAProxy's
// glitch counter and nghttp2's reset rate limit it is a score, not a ban list: completed streams and time
// pay glitches back, so browsers and curl, which cancel streams for good reasons, are never cut off.
// No I/O, no clock reads, no allocation: the connection passes the event loop's cached time in.

/// One kind of glitch: an event that made Weir work for nothing.
public enum HTTP2Glitch: Int, CaseIterable, Sendable {
    /// RST_STREAM from the client before Weir sent the response's final head (rapid reset).
    case clientReset
    /// A stream Weir had to reset because of the client's frame (DATA after END_STREAM, a WINDOW_UPDATE
    /// that overflows, a bad frame on an open stream): MadeYouReset.
    case provokedReset
    /// A PING frame.
    case ping
    /// A SETTINGS frame that is not an ACK.
    case settings
    /// A PRIORITY frame (RFC 9113 deprecates the scheme; Weir ignores it).
    case priority
    /// A DATA frame with no payload and no END_STREAM.
    case emptyData
    /// A WINDOW_UPDATE of 0, or one too small to be useful while Weir was blocked on that window.
    case uselessWindowUpdate

    /// Short name for logs and the GOAWAY debug data.
    public var name: String {
        switch self {
        case .clientReset: "client resets"
        case .provokedReset: "provoked resets"
        case .ping: "PING flood"
        case .settings: "SETTINGS flood"
        case .priority: "PRIORITY flood"
        case .emptyData: "empty DATA flood"
        case .uselessWindowUpdate: "useless WINDOW_UPDATE flood"
        }
    }
}

/// Why the guard closes a connection.
public enum HTTP2GuardReason: Sendable, Equatable {
    /// The glitch score passed `glitchThreshold`; the kind counted most on this connection.
    case glitches(HTTP2Glitch)
    /// A header block had more than `maxHeaderBlockFrames` frames (CONTINUATION flood).
    case headerBlockFrames
    /// A header block had more than `maxHeaderBlockBytes` payload bytes.
    case headerBlockBytes
    /// Data waited on a zero peer window longer than `zeroWindowTimeoutNanoseconds`.
    case zeroWindowStall

    /// Text for logs and the GOAWAY debug data, e.g. "too many glitches: client resets".
    public var description: String {
        switch self {
        case .glitches(let kind): "too many glitches: \(kind.name)"
        case .headerBlockFrames: "CONTINUATION flood: too many frames in a header block"
        case .headerBlockBytes: "header block too large"
        case .zeroWindowStall: "zero-window stall"
        }
    }
}

/// What the connection does after feeding an event to the guard.
public enum HTTP2GuardVerdict: Sendable, Equatable {
    /// Go on.
    case proceed
    /// Send GOAWAY(`HTTP2Guard.enhanceYourCalm`) with the reason as debug data and close the connection.
    case goAway(HTTP2GuardReason)
}

/// Per-connection glitch counter. One per HTTP/2 client connection, owned by its event-loop thread.
///
/// Feed it every frame header (`frameHeader`) before the payload is processed, stream resets
/// (`clientReset`, `provokedReset`), WINDOW_UPDATEs (`windowUpdate`), completed streams
/// (`streamCompleted`) and flow-control blocking (`sendBlocked`, `sendProgressed`, `checkStall`). Every
/// `now` is a monotonic time in nanoseconds, never decreasing between calls. Once a verdict is `.goAway`,
/// every later call answers the same.
public struct HTTP2Guard: Sendable {
    /// The HTTP/2 error code ENHANCE_YOUR_CALM (RFC 9113 §7), sent with every GOAWAY of the guard.
    public static let enhanceYourCalm: UInt32 = 0xb

    /// HTTP/2 frame types and flags the guard reads (RFC 9113 §6).
    public enum FrameType {
        public static let data: UInt8 = 0x0, headers: UInt8 = 0x1, priority: UInt8 = 0x2
        public static let settings: UInt8 = 0x4, ping: UInt8 = 0x6, continuation: UInt8 = 0x9
    }
    public enum Flag {
        public static let endStream: UInt8 = 0x1, ack: UInt8 = 0x1, endHeaders: UInt8 = 0x4
    }

    public let limits: HTTP2GuardLimits
    /// The current glitch score (0 ... threshold).
    public private(set) var score = 0
    /// The closing reason once the guard has answered `.goAway`.
    public private(set) var closedFor: HTTP2GuardReason?
    /// Glitches counted per kind over the connection's life (not decayed), for logs and metrics.
    private var counts = GlitchCounts()
    /// Streams completed over the connection's life.
    public private(set) var completedStreams = 0
    private var lastDecay: UInt64
    private var blockFrames = 0
    private var blockBytes = 0
    private var blockedSince: UInt64?

    /// Creates the guard of a connection accepted at `now`.
    public init(limits: HTTP2GuardLimits = HTTP2GuardLimits(), now: UInt64) {
        self.limits = limits
        self.lastDecay = now
    }

    /// Glitches of `kind` counted so far (never decayed).
    public func count(of kind: HTTP2Glitch) -> Int { counts[kind] }

    /// A frame header read from the client, before its payload is processed (nghttp2's
    /// on_begin_frame_callback). Counts header-block frames and bytes and the frames that are glitches by
    /// their header alone: PING, non-ACK SETTINGS, PRIORITY, empty DATA without END_STREAM.
    public mutating func frameHeader(type: UInt8, flags: UInt8, length: Int, now: UInt64) -> HTTP2GuardVerdict {
        if let closedFor { return .goAway(closedFor) }
        switch type {
        case FrameType.headers:
            blockFrames = 0
            blockBytes = 0
            return headerBlockFrame(flags: flags, length: length)
        case FrameType.continuation:
            return headerBlockFrame(flags: flags, length: length)
        case FrameType.ping:
            return record(.ping, now: now)
        case FrameType.settings where flags & Flag.ack == 0:
            return record(.settings, now: now)
        case FrameType.priority:
            return record(.priority, now: now)
        case FrameType.data where length == 0 && flags & Flag.endStream == 0:
            return record(.emptyData, now: now)
        default:
            return .proceed
        }
    }

    /// The client reset a stream. Only a reset before Weir sent the response's final head is a glitch
    /// (rapid reset); cancelling a stream whose response is under way is what browsers do.
    public mutating func clientReset(responseStarted: Bool, now: UInt64) -> HTTP2GuardVerdict {
        if responseStarted { return closedFor.map { .goAway($0) } ?? .proceed }
        return record(.clientReset, now: now)
    }

    /// Weir reset a stream because of the client's frame (MadeYouReset).
    public mutating func provokedReset(now: UInt64) -> HTTP2GuardVerdict {
        record(.provokedReset, now: now)
    }

    /// A WINDOW_UPDATE of `increment` bytes; `wasBlocking`: Weir had data waiting on that window.
    public mutating func windowUpdate(increment: Int, wasBlocking: Bool, now: UInt64) -> HTTP2GuardVerdict {
        guard increment == 0 || (wasBlocking && increment < limits.minUsefulWindowIncrement) else {
            return closedFor.map { .goAway($0) } ?? .proceed
        }
        return record(.uselessWindowUpdate, now: now)
    }

    /// A stream's response was sent completely: pays `completedStreamCredit` glitches back.
    public mutating func streamCompleted(now: UInt64) {
        completedStreams += 1
        decay(now: now)
        score = max(0, score - limits.completedStreamCredit)
    }

    /// Weir has data for the client and the peer's connection window is 0. A second call while blocked
    /// keeps the first time.
    public mutating func sendBlocked(now: UInt64) {
        if blockedSince == nil { blockedSince = now }
    }

    /// The client opened its window and Weir sent data again (or has nothing left to send).
    public mutating func sendProgressed() {
        blockedSince = nil
    }

    /// When the connection must next call `checkStall`, or nil while it is not blocked.
    public var stallDeadline: UInt64? {
        blockedSince.map { $0 &+ limits.zeroWindowTimeoutNanoseconds }
    }

    /// `.goAway(.zeroWindowStall)` once the connection has been blocked longer than the timeout.
    public mutating func checkStall(now: UInt64) -> HTTP2GuardVerdict {
        if let closedFor { return .goAway(closedFor) }
        guard let blockedSince, Self.isStalled(blockedSince: blockedSince, now: now, limits: limits) else {
            return .proceed
        }
        return close(.zeroWindowStall)
    }

    /// Whether one stream blocked on its own window since `blockedSince` has waited past the timeout
    /// (the connection keeps the time in its stream; the stream is then reset, not the connection).
    public static func isStalled(blockedSince: UInt64, now: UInt64, limits: HTTP2GuardLimits) -> Bool {
        now >= blockedSince && now - blockedSince >= limits.zeroWindowTimeoutNanoseconds
    }

    // MARK: - Counting

    /// Adds one glitch of `kind` after time decay; `.goAway` past the threshold.
    public mutating func record(_ kind: HTTP2Glitch, now: UInt64) -> HTTP2GuardVerdict {
        if let closedFor { return .goAway(closedFor) }
        counts[kind] += 1
        guard limits.glitchThreshold > 0 else { return .proceed }
        decay(now: now)
        score += 1
        guard score > limits.glitchThreshold else { return .proceed }
        return close(.glitches(counts.dominant))
    }

    private mutating func headerBlockFrame(flags: UInt8, length: Int) -> HTTP2GuardVerdict {
        blockFrames += 1
        blockBytes += length
        if blockFrames > limits.maxHeaderBlockFrames { return close(.headerBlockFrames) }
        if blockBytes > limits.maxHeaderBlockBytes { return close(.headerBlockBytes) }
        if flags & Flag.endHeaders != 0 {
            blockFrames = 0
            blockBytes = 0
        }
        return .proceed
    }

    /// Takes off the glitches forgiven since the last decay; keeps the unspent remainder of time.
    private mutating func decay(now: UInt64) {
        guard now > lastDecay else { return }
        guard limits.glitchDecayPerSecond > 0, score > 0 else {
            lastDecay = now
            return
        }
        let interval = 1_000_000_000 / UInt64(limits.glitchDecayPerSecond)
        let forgiven = (now - lastDecay) / max(interval, 1)
        if forgiven >= UInt64(score) {
            score = 0
            lastDecay = now
        } else {
            score -= Int(forgiven)
            lastDecay += forgiven * interval
        }
    }

    private mutating func close(_ reason: HTTP2GuardReason) -> HTTP2GuardVerdict {
        closedFor = reason
        return .goAway(reason)
    }
}

/// Glitch counts per kind, stored inline (no array, no allocation).
struct GlitchCounts: Sendable {
    private var clientReset = 0, provokedReset = 0, ping = 0, settings = 0, priority = 0
    private var emptyData = 0, uselessWindowUpdate = 0

    subscript(kind: HTTP2Glitch) -> Int {
        get {
            switch kind {
            case .clientReset: clientReset
            case .provokedReset: provokedReset
            case .ping: ping
            case .settings: settings
            case .priority: priority
            case .emptyData: emptyData
            case .uselessWindowUpdate: uselessWindowUpdate
            }
        }
        set {
            switch kind {
            case .clientReset: clientReset = newValue
            case .provokedReset: provokedReset = newValue
            case .ping: ping = newValue
            case .settings: settings = newValue
            case .priority: priority = newValue
            case .emptyData: emptyData = newValue
            case .uselessWindowUpdate: uselessWindowUpdate = newValue
            }
        }
    }

    /// The kind counted most (the first in declaration order on a tie).
    var dominant: HTTP2Glitch {
        var best = HTTP2Glitch.clientReset
        for kind in HTTP2Glitch.allCases where self[kind] > self[best] { best = kind }
        return best
    }
}

import WeirBalance
import WeirHTTP

/// The access-log line of an exchange: gathers what the line's format needs. Called only while the
/// access log is on; the header lookups only for the formats that print them.
extension ClientSession {
    /// Logs the finished exchange of `request`. `server`: the server that answered (nil: Weir
    /// answered itself, or redirected to `redirectedServer`).
    func logExchange(_ request: RequestHead, status: Int, server: Int?, bytes: Int, totalMs: Int64, upstreamMs: Int64?) {
        let head = request.bytes
        var end = 0
        while end < head.count && head[end] != 13 { end += 1 }
        var entry = baseEntry(requestLine: isHTTP2Stream ? Self.http2RequestLine(head[0..<end]) : head[0..<end], status: status)
        entry.bytes = bytes
        entry.totalMs = totalMs
        entry.upstreamMs = upstreamMs
        if let chosen = server ?? redirectedServer {
            entry.server = snapshot.servers[chosen].config.id
            entry.pool = snapshot.configuration.pools[generation.poolOfServer[chosen]].name
            entry.redirect = server == nil
        }
        if worker.accessLog.needsHeaderFields {
            entry.userAgent = request.value(of: "user-agent").map { head[$0] }
            entry.referer = request.value(of: "referer").map { head[$0] }
        }
        if worker.accessLog.needsDetail {
            entry.upstreamConnectMs = upstreamConnectMs
            entry.pin = pinOutcome
        }
        worker.accessLog.record(entry)
    }

    /// An HTTP/2 stream's request line as the access log shows it: the version its synthesized
    /// HTTP/1.1 head says, replaced by "HTTP/2.0".
    private static func http2RequestLine(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard let space = line.lastIndex(of: UInt8(ascii: " ")) else { return line }
        return ArraySlice(line[...space] + Array("HTTP/2.0".utf8))
    }

    /// Logs a request Weir could not parse (`line`: its first bytes up to a line end).
    func logUnparsed(_ line: ArraySlice<UInt8>, status: Int) {
        worker.accessLog.record(baseEntry(requestLine: line, status: status))
    }

    /// Forgets the detail captured for the previous exchange (json format).
    func resetAccessLogDetail() {
        upstreamConnectMs = nil
        pinOutcome = nil
    }

    /// The fields every format has; the listener and the TLS version only for `json`, which prints them.
    private func baseEntry(requestLine: ArraySlice<UInt8>, status: Int) -> AccessLogEntry {
        let detail = worker.accessLog.needsDetail
        return AccessLogEntry(wallMs: worker.loop.wallClockMilliseconds, client: client.peer.host, clientPort: client.peer.port,
                              listener: detail ? generation.configuration.listeners[listenerIndex].name : "",
                              requestLine: requestLine, status: status, bytes: 0, totalMs: 0,
                              tls: detail ? client.tlsVersionName : nil)
    }
}

extension PinOutcome {
    /// What a verdict's pin commit means for the log (nil: no sticky rule concerned the request).
    init?(_ pin: PinCommit?) {
        guard let pin else { return nil }
        if pin.rejected != nil {
            self = .rejected
        } else if pin.moved {
            self = .moved
        } else {
            switch pin.change {
            case .remove?: self = .ended
            case .touch(_, _, _, _, let presented)?: self = presented ? .kept : .new
            case nil: return nil
            }
        }
    }
}

import Glibc
import WeirConfig
import WeirHTTP
import WeirIO

// Inbound PROXY protocol (`proxy_protocol = true` on a listener): the header is read off the socket before
// the session (and the TLS handshake) starts, and its source address becomes the client's address
// (X-Forwarded-For, the access log, `hash_key = "source"`). Only such listeners come here.

extension Worker {
    /// Reads the PROXY header of a connection accepted on `listener` from `peer`, then admits it with
    /// the header's addresses. A peer outside `allowed`, or no valid header within the listener's handshake
    /// time (TLS `handshake_timeout`, else `client_header`), is closed at once: no HTTP answer can be
    /// trusted to reach the right client before the header is known (HAProxy closes too).
    func readProxyHeader(fd: Int32, peer: PeerAddress, slot: ListenerSlot, listener: Int, allowed: [NetworkPrefix]) {
        guard let address = IPText.parse(Array(peer.host.utf8)[...]), allowed.contains(where: { $0.contains(address) }) else {
            Glibc.close(fd)
            refuseProxy(peer, "source not in proxy_protocol_from of listener "
                        + "\"\(generation.configuration.listeners[listener].name)\"")
            return
        }
        // Pending headers count against the listener's limit like connections do.
        guard proxyHeaderReaders.count < generation.configuration.listeners[listener].maxConnections else {
            Glibc.close(fd)
            refuseProxy(peer, "too many connections waiting for their PROXY header")
            return
        }
        let handshakeMs = generation.handshakeTimeoutsMs[listener]
        let timeoutMs = handshakeMs > 0 ? handshakeMs : generation.settings.clientHeaderMs
        var stated: ProxyHeader?
        let reader = PrefaceReader(loop: loop, fd: fd, maxBytes: ProxyProtocolParser.maxHeaderBytes,
                                   timeoutMilliseconds: timeoutMs, examine: { bytes in
            switch ProxyProtocolParser.parse(bytes) {
            case .needMore: return .needMore
            case .error(let reason): return .refuse(reason)
            case .complete(let header, let consumed):
                stated = header
                return .consume(consumed)
            }
        }, finish: { [unowned self] reader, outcome in
            self.proxyHeaderReaders.removeValue(forKey: ObjectIdentifier(reader))
            switch outcome {
            case .ready(let fd): self.admitProxied(fd: fd, peer: peer, header: stated ?? .local, slot: slot)
            case .refused(let reason): self.refuseProxy(peer, reason)
            case .timedOut: self.refuseProxy(peer, "no complete PROXY header within \(timeoutMs) ms")
            case .closed: self.refuseProxy(peer, "connection closed before a complete PROXY header")
            }
        })
        if !reader.isDone { proxyHeaderReaders[ObjectIdentifier(reader)] = reader }
    }

    /// Admits a connection whose header was read: with the stated addresses, or its own for LOCAL/UNKNOWN.
    private func admitProxied(fd: Int32, peer: PeerAddress, header: ProxyHeader, slot: ListenerSlot) {
        // The configuration may have been reloaded while the header came: the listener may be gone.
        let generation = self.generation
        guard !isDraining, let listener = generation.listenerIndex(of: slot) else { Glibc.close(fd); return }
        switch header {
        case .local:
            admit(fd: fd, peer: peer, slot: slot, generation: generation, listener: listener)
        case .proxied(let source, let destination):
            admit(fd: fd, peer: PeerAddress(host: source.host, port: Int(source.port)), slot: slot,
                  generation: generation, listener: listener,
                  local: PeerAddress(host: destination.host, port: Int(destination.port)))
        }
    }

    /// Counts a refused PROXY connection and logs it, at most once a second per worker (a scan or a
    /// misconfigured balancer must not flood the log), with how many went unlogged meanwhile.
    private func refuseProxy(_ peer: PeerAddress, _ reason: String) {
        stats.proxyProtocolRefused.wrappingIncrement(ordering: .relaxed)
        let now = loop.monotonicMilliseconds
        guard proxyRefusalLog.lastMs == Int64.min || now - proxyRefusalLog.lastMs >= 1000 else {
            proxyRefusalLog.unlogged += 1
            return
        }
        let more = proxyRefusalLog.unlogged > 0 ? " (and \(proxyRefusalLog.unlogged) more refused since the last message)" : ""
        proxyRefusalLog = (now, 0)
        let shown = peer.host.contains(":") ? "[\(peer.host)]:\(peer.port)" : "\(peer.host):\(peer.port)"
        log(LogLevel.warning.tag + "weir: PROXY protocol connection from \(shown) closed: \(reason)\(more)")
    }
}

import Glibc

/// What the metrics need to remember of the exchange in flight on a client connection: when it
/// began, when its upstream connect began, when its request went to the server, the request bytes
/// read. Plain fields of the session: setting them costs a store.
struct ExchangeMeter {
    var startUs: UInt64 = 0
    var connectStartUs: UInt64 = 0
    var sentUs: UInt64 = 0
    var bytesIn = 0
    /// The clock read once in the current `run()` of the session (0: not yet): every action of one
    /// run is carried out in the same callback, so one reading serves them all.
    var passUs: UInt64 = 0
    /// The pool that could not take the request (-1: none): a 503 that ends the exchange counts there.
    var unavailablePool = -1

    /// CLOCK_MONOTONIC in microseconds (the vDSO: no system call). Not libevent's cached loop time:
    /// libevent keeps it with CLOCK_MONOTONIC_COARSE (a few ms per tick) unless its timers are made
    /// precise, too coarse for the first buckets.
    @inline(__always)
    static func nowMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(truncatingIfNeeded: ts.tv_sec) &* 1_000_000 &+ UInt64(truncatingIfNeeded: ts.tv_nsec / 1000)
    }

    /// `later - earlier`, or 0 if they are out of order.
    @inline(__always)
    static func elapsed(_ earlier: UInt64, _ later: UInt64) -> UInt64 { later > earlier ? later - earlier : 0 }
}

/// The session's metric hooks: each is called at one point of `ClientSession` and writes this
/// worker's stripes of the exchange's generation (no lock, no allocation, no dictionary lookup).
/// Servers only: a pool's figures are summed from its servers when scraped.
extension ClientSession {
    /// The time of the current run of actions, for hooks called while actions run (`run()` clears it when it ends).
    @inline(__always)
    func passMicroseconds() -> UInt64 {
        if meter.passUs == 0 { meter.passUs = ExchangeMeter.nowMicroseconds() }
        return meter.passUs
    }

    /// A request head was parsed (`.count(.request)`): the exchange begins now.
    @inline(__always)
    func meterRequestStarted() {
        meter.startUs = passMicroseconds()
        meter.bytesIn = machine.request?.bytes.count ?? 0
        generation.meters.listeners[listenerIndex].add(ListenerSlots.requests)
    }

    /// The request to `server` is being handed to a connection: an idle pooled one (sent now) or a
    /// new one (sent once it is connected, see `meterConnected`).
    @inline(__always)
    func meterAttached(server: Int, pooled: Bool) {
        let now = passMicroseconds()
        let meters = generation.meters
        if pooled {
            meter.sentUs = now
            meters.servers[server].add(ExchangeSlots.connectionsReused)
        } else {
            meter.connectStartUs = now
            meters.servers[server].add(ExchangeSlots.connectionsOpened)
        }
    }

    /// A new upstream connection to `server` is established: observe the connect time. Called
    /// outside `run()`, so it reads the clock itself.
    @inline(__always)
    func meterConnected(server: Int?) {
        guard let server else { return }
        let now = ExchangeMeter.nowMicroseconds()
        let us = ExchangeMeter.elapsed(meter.connectStartUs, now)
        meter.sentUs = now
        generation.meters.servers[server].observe(ExchangeSlots.connect, microseconds: us)
    }

    /// `server`'s final response head arrived: observe the time to first byte.
    @inline(__always)
    func meterFirstByte(server: Int) {
        let us = ExchangeMeter.elapsed(meter.sentUs, passMicroseconds())
        generation.meters.servers[server].observe(ExchangeSlots.firstByte, microseconds: us)
    }

    /// Pool `pool` had no server for the request (or queued it): a 503 answer that ends the
    /// exchange counts as the pool's (`weir_pool_unavailable_total`, and its 5xx responses).
    func meterUnavailable(pool: Int?) {
        meter.unavailablePool = pool ?? -1
    }

    /// The pool of the route `target` takes (for a 503 `Decision` gave without naming the pool;
    /// a failure path only: the route is looked up again).
    func routedPool(_ target: TargetParts) -> Int? {
        target.withRoutingBytes { host, path in
            snapshot.route(host: target.hasNoHost ? nil : host, path: path, listener: listenerIndex)?.pool
        }
    }

    /// The request failed on a server and goes to another one (`.count(.retry)`; the failed
    /// server is the last one `route(retry:)` excluded).
    func meterRetry() {
        let meters = generation.meters
        meters.listeners[listenerIndex].add(ListenerSlots.retries)
        guard let failed = excluded.last else { return }
        meters.servers[failed].add(ExchangeSlots.retries)
    }

    /// The exchange ended with `status` (`server`: the one that answered, nil for an answer Weir
    /// made itself); `bytesOut` response bytes went to the client. Counts the response by class
    /// for the listener, and for the server and its pool with the exchange's duration.
    @inline(__always)
    func meterExchangeEnded(status: Int, server: Int?, bytesOut: Int) {
        let meters = generation.meters
        let statusClass = WorkerMeters.statusClass(status)
        let bytesIn = UInt64(max(0, meter.bytesIn)), bytesOut = UInt64(max(0, bytesOut))
        let listener = meters.listeners[listenerIndex]
        listener.add(ListenerSlots.responses + statusClass)
        listener.add(ListenerSlots.bytesIn, bytesIn)
        listener.add(ListenerSlots.bytesOut, bytesOut)
        if redirectedServer != nil { listener.add(ListenerSlots.redirects) }
        meter.bytesIn = 0
        if meter.unavailablePool >= 0 {
            if server == nil && status == 503 { meters.pools[meter.unavailablePool].add(ExchangeSlots.unavailable) }
            meter.unavailablePool = -1
        }
        guard let server else { return }
        let us = ExchangeMeter.elapsed(meter.startUs, passMicroseconds())
        // The server's pool is the sum of its servers (see GenerationMetrics): one set of writes.
        let stripe = meters.servers[server]
        stripe.add(ExchangeSlots.responses + statusClass)
        stripe.add(ExchangeSlots.bytesIn, bytesIn)
        stripe.add(ExchangeSlots.bytesOut, bytesOut)
        stripe.observe(ExchangeSlots.duration, microseconds: us)
    }
}

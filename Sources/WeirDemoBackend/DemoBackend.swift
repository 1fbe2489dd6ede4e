import Glibc
import WeirHTTP
import WeirIO

/// Weir's demo origin server: small and fast, for `make run`, the tests and the benchmarks.
///
/// - any path: `NAME\n` (header `X-Served-By: NAME`)
/// - `/health`: `ok`
/// - `/echo`: the request line, headers, body size and body SHA-256 as JSON
/// - `/stats`: connections accepted and requests served, as JSON
/// - `/ws`: WebSocket echo
/// - `/control?load=0.9&state=drain&health=503`: changes what `/health` reports (`load=` empty clears it)
/// - query parameters: `delay=MS` (answer later), `size=BYTES` (body of that size), `status=CODE`,
///   `chunked=1` (chunked response, with a trailer when `trailers=1`), `stall_after=BYTES` (send the
///   head and that many body bytes, then nothing: for tests that kill a server mid-response),
///   `close=1` (close the connection after the response, without Content-Length), `body=TEXT` (that
///   body), `type=MEDIA` (its Content-Type), `location=`, `refresh=`, `link=` (those response fields).
public final class DemoBackend {
    let name: String
    let loop: EventLoop
    private var listener: ListeningSocket?
    var connections = 0
    var requests = 0
    /// What `/health` reports: a `Weir-Load` header value (e.g. "0.9" or "90%"), a state for a JSON
    /// body ("up", "drain", "maint", "down"), and its status code. Changed at run time through
    /// `/control?load=0.9&state=drain&health=503` (for tests and demos).
    var reportedLoad: String?
    var reportedState: String?
    var healthStatus = 200
    private var sessions: [ObjectIdentifier: DemoSession] = [:]
    /// One MiB of filler, sliced for `size=` bodies.
    let filler: [UInt8] = (0..<(1 << 20)).map { UInt8(ascii: "a") + UInt8($0 % 26) }

    /// Binds `host`:`port` (port 0 picks one; see `port`). Throws an `IOError` naming the address.
    /// Milliseconds every answer is delayed by (a slow server, for balancing demos); `delay=` adds to it.
    let baseDelay: Int

    public init(name: String, host: String, port: Int, reportedLoad: String? = nil, baseDelay: Int = 0) throws {
        self.name = name
        self.baseDelay = baseDelay
        self.reportedLoad = reportedLoad
        loop = try EventLoop()
        listener = try ListeningSocket(loop: loop, host: host, port: port) { [unowned self] fd, peer in
            guard let c = Connection.accepted(loop: self.loop, fd: fd, peer: peer) else { return }
            self.connections += 1
            let session = DemoSession(backend: self, connection: c)
            self.sessions[ObjectIdentifier(session)] = session
        }
    }

    /// The bound port.
    public var port: Int { listener?.port ?? 0 }

    /// Serves until SIGTERM or SIGINT.
    public func run() {
        ProcessSetup.ignoreSIGPIPE()
        let stop = { [loop] in loop.stop() }
        let term = SignalWatcher(loop: loop, signal: SIGTERM, stop)
        let int = SignalWatcher(loop: loop, signal: SIGINT, stop)
        loop.run()
        _ = (term, int)
    }

    func ended(_ session: DemoSession) {
        sessions.removeValue(forKey: ObjectIdentifier(session))
    }
}

import Glibc
import WeirBalance
import WeirHTTP
import WeirIO

/// The admin listener (loopback by default, or a Unix socket): `GET /status` answers the live state
/// of every pool and server as JSON, `GET /` the dashboard; `AdminAuth` decides who may do what.
/// Runs on the control thread's loop; one request per connection.
final class AdminServer {
    private var socket: ListeningSocket?
    private let loop: EventLoop
    fileprivate let api: AdminAPI
    private var sessions: [ObjectIdentifier: AdminSession] = [:]

    /// Binds `host`:`port`; `api` answers the requests.
    /// Throws an `IOError` naming the address when it cannot be bound.
    convenience init(loop: EventLoop, host: String, port: Int, api: AdminAPI) throws {
        try self.init(loop: loop, adopting: try ListeningSocket.bind(host: host, port: port), api: api)
    }

    /// The socket file and its inode when listening on a Unix socket (removed at close if still ours).
    private var unixSocket: (path: String, inode: UInt64)?

    /// Listens on the Unix-domain socket `path` (permissions `mode`); see `UnixStreamSocket.listen`
    /// for `replaceLive`. Throws an `IOError` naming the path when it cannot listen there.
    convenience init(loop: EventLoop, unixPath path: String, mode: Int, replaceLive: Bool, api: AdminAPI) throws {
        let fd = try UnixStreamSocket.listen(path: path, mode: mode_t(mode), replaceLive: replaceLive)
        try self.init(loop: loop, adopting: fd, api: api)
        unixSocket = UnixStreamSocket.inode(path).map { (path, $0) }
    }

    /// Starts accepting on the listening socket `fd` (owned from now on).
    private init(loop: EventLoop, adopting fd: Int32, api: AdminAPI) throws {
        self.loop = loop
        self.api = api
        socket = try ListeningSocket(loop: loop, adopting: fd) { [unowned self] fd, peer in
            guard let c = Connection.accepted(loop: self.loop, fd: fd, peer: peer) else { return }
            let session = AdminSession(server: self, connection: c)
            self.sessions[ObjectIdentifier(session)] = session
        }
    }

    /// The bound port.
    var port: Int { socket?.port ?? 0 }

    func close() {
        socket?.close()
        // A binary upgrade's new process may have bound the path since: its file stays.
        if let (path, inode) = unixSocket, UnixStreamSocket.inode(path) == inode { unlink(path) }
        unixSocket = nil
        for s in sessions.values { s.connection.close() }
        sessions.removeAll()
    }

    fileprivate func ended(_ session: AdminSession) { sessions.removeValue(forKey: ObjectIdentifier(session)) }

    fileprivate func respond(to request: AdminRequest) -> AdminAPI.Answer {
        api.answer(request)
    }

    fileprivate final class AdminSession: ConnectionHandler {
        unowned let server: AdminServer
        let connection: Connection
        private var head: RequestHead?
        private var body = BodyReader.empty
        private var bodyBytes = 0
        /// The body as read (a login form); at most `maxBodyBytes`.
        private var bodyData: [UInt8] = []
        /// Admin requests carry no body that matters; a larger one is refused instead of read on.
        static let maxBodyBytes = 64 * 1024

        init(server: AdminServer, connection: Connection) {
            self.server = server
            self.connection = connection
            connection.handler = self
            connection.setTimeouts(readMilliseconds: 10_000, writeMilliseconds: 10_000)
        }

        func connectionReadable(_ c: Connection) {
            if head == nil {
                let result = c.input.withContiguousPrefix(65537) { RequestHeadParser.parse($0, limits: ParserLimits()) }
                switch result {
                case .needMore:
                    return
                case .error(let e):
                    reject(e.status, e.reason, on: c)
                    return
                case .complete(let h, let consumed):
                    c.input.drain(consumed)
                    head = h
                    body = BodyReader(h.framing)
                }
            }
            guard let head else { return }
            // The body (a login form) is read to its end, also so that closing after the answer
            // does not reset the connection under it.
            while !body.isComplete {
                switch body.next(available: c.input.count, prefix: { c.input.withContiguousPrefix($0, $1) }) {
                case .needMore:
                    return
                case .data(let n):
                    bodyBytes += n
                    if bodyBytes > Self.maxBodyBytes {
                        reject(413, "admin requests take no body larger than \(Self.maxBodyBytes) bytes", on: c)
                        return
                    }
                    bodyData += c.input.withContiguousPrefix(n) { Array($0.prefix(n)) }
                    c.input.drain(n)
                case .framing(let n):
                    c.input.drain(n)
                case .error(let e):
                    reject(e.status, e.reason, on: c)
                    return
                }
            }
            let request = AdminRequest(head: head, body: bodyData)
            if let refusal = server.api.refusal(request) {
                send(refusal, for: head, on: c)
                return
            }
            if let deferred = server.api.deferredAnswer(method: head.methodString, target: head.targetString) {
                // POST /upgrade: answered when its outcome is known (seconds); nothing more is read meanwhile.
                c.setReading(false)
                deferred { [self] answer in if c.isOpen { self.send(answer, for: head, on: c) } }
                return
            }
            send(server.respond(to: request), for: head, on: c)
        }

        private func send(_ answer: AdminAPI.Answer, for head: RequestHead, on c: Connection) {
            var response = ResponseHeadWriter(status: answer.status)
            response.field("Content-Type", answer.contentType)
            response.field("Cache-Control", "no-store")
            for (name, value) in answer.headers { response.field(name, value) }
            response.connection(keepAlive: false)
            response.contentLength(answer.body.count)
            c.output.append(response.finish())
            if !head.isHEAD { c.output.append(answer.body) }
            end(c)
        }

        private func reject(_ status: Int, _ reason: String, on c: Connection) {
            ErrorResponse.write(status: status, reason: reason, to: c.output)
            end(c)
        }

        /// One request per connection: close once the answer is sent.
        private func end(_ c: Connection) {
            c.closeAfterFlush()
            server.ended(self)
        }

        func connectionWritable(_ c: Connection) {}
        func connection(_ c: Connection, event: ConnectionEvent) {
            c.close()
            server.ended(self)
        }
    }
}

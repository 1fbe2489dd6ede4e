import WeirBalance
import WeirHTTP
import WeirIO

/// The admin listener (loopback by default): `GET /status` answers the live state of every pool
/// and server as JSON. Runs on the control thread's loop; one request per connection.
final class AdminServer {
    private var socket: ListeningSocket?
    private let loop: EventLoop
    private let api: AdminAPI
    private var sessions: [ObjectIdentifier: AdminSession] = [:]

    /// Binds `host`:`port`; `api` answers the requests.
    /// Throws an `IOError` naming the address when it cannot be bound.
    init(loop: EventLoop, host: String, port: Int, api: AdminAPI) throws {
        self.loop = loop
        self.api = api
        socket = try ListeningSocket(loop: loop, host: host, port: port) { [unowned self] fd, peer in
            guard let c = Connection.accepted(loop: self.loop, fd: fd, peer: peer) else { return }
            let session = AdminSession(server: self, connection: c)
            self.sessions[ObjectIdentifier(session)] = session
        }
    }

    /// The bound port.
    var port: Int { socket?.port ?? 0 }

    func close() {
        socket?.close()
        for s in sessions.values { s.connection.close() }
        sessions.removeAll()
    }

    fileprivate func ended(_ session: AdminSession) { sessions.removeValue(forKey: ObjectIdentifier(session)) }

    fileprivate func respond(to head: RequestHead) -> AdminAPI.Answer {
        api.answer(method: head.methodString, target: head.targetString)
    }

    fileprivate final class AdminSession: ConnectionHandler {
        unowned let server: AdminServer
        let connection: Connection
        init(server: AdminServer, connection: Connection) {
            self.server = server
            self.connection = connection
            connection.handler = self
            connection.setTimeouts(readMilliseconds: 10_000, writeMilliseconds: 10_000)
        }
        func connectionReadable(_ c: Connection) {
            let result = c.input.withContiguousPrefix(65537) { RequestHeadParser.parse($0, limits: ParserLimits()) }
            switch result {
            case .needMore:
                return
            case .error(let e):
                ErrorResponse.write(status: e.status, reason: e.reason, to: c.output)
            case .complete(let head, let consumed):
                // A POST body is not used: wait until it is all here, so the client is not reset.
                if case .contentLength(let n) = head.framing, c.input.count < consumed + n { return }
                let answer = server.respond(to: head)
                c.output.append("HTTP/1.1 \(answer.status) \(answer.status == 200 ? "OK" : ErrorResponse.phrase(answer.status))\r\n"
                                + "Content-Type: \(answer.contentType)\r\nCache-Control: no-store\r\nConnection: close\r\n"
                                + "Content-Length: \(answer.body.count)\r\n\r\n")
                if !head.isHEAD { c.output.append(answer.body) }
            }
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

import WeirHTTP
import WeirIO

/// One connection to the demo backend: parse, consume the body, answer, repeat.
final class DemoSession: ConnectionHandler {
    unowned let backend: DemoBackend
    let connection: Connection
    private var head: RequestHead?
    private var body = BodyReader.empty
    private var bodyBytes = 0
    private var hash: SHA256Stream?
    private var waiting = false       // a delayed answer is pending
    private var webSocket: WebSocketEcho?
    private var timer: LoopTimer?
    private var sentContinue = false

    init(backend: DemoBackend, connection: Connection) {
        self.backend = backend
        self.connection = connection
        connection.handler = self
    }

    func connectionReadable(_ c: Connection) { process() }
    func connectionWritable(_ c: Connection) {}
    func connection(_ c: Connection, event: ConnectionEvent) {
        if case .connected = event { return }
        close()
    }

    private func close() {
        timer?.cancel()
        connection.close()
        backend.ended(self)
    }

    private func process() {
        if let webSocket {
            if !webSocket.consume(connection.input, output: connection.output) { connection.closeAfterFlush(); backend.ended(self) }
            return
        }
        while !waiting, connection.isOpen {
            if head == nil {
                let result = connection.input.withContiguousPrefix(65537) {
                    RequestHeadParser.parse($0, limits: ParserLimits())
                }
                switch result {
                case .needMore:
                    return
                case .error(let e):
                    reject(status: e.status)
                    return
                case .complete(let h, let consumed):
                    connection.input.drain(consumed)
                    head = h
                    bodyBytes = 0
                    sentContinue = false
                    hash = h.targetString.hasPrefix("/echo") ? SHA256Stream() : nil
                    body = BodyReader(h.framing)
                }
            }
            guard let h = head else { return }
            if h.expectsContinue, !sentContinue, !body.isComplete {
                sentContinue = true
                connection.output.append(ResponseHeadWriter(status: 100).finish())
            }
            if !consumeBody() { return }
            head = nil
            respond(to: h)
        }
    }

    /// Consumes buffered body bytes (hashing them for /echo); returns true when the body is complete.
    private func consumeBody() -> Bool {
        let input = connection.input
        while !body.isComplete {
            switch body.next(available: input.count, prefix: { input.withContiguousPrefix($0, $1) }) {
            case .needMore:
                return false
            case .data(let n):
                hash?.update(input, count: n)
                input.drain(n)
                bodyBytes += n
            case .framing(let n):
                input.drain(n)
            case .error(let e):
                reject(status: e.status)
                return false
            }
        }
        return true
    }

    /// Answers a request that cannot be served with `status` and no body, and closes.
    private func reject(status: Int) {
        waiting = true   // nothing more is answered on this connection
        var head = ResponseHeadWriter(status: status)
        head.contentLength(0)
        head.connection(keepAlive: false)
        connection.output.append(head.finish())
        connection.closeAfterFlush()
        backend.ended(self)
    }

    private func respond(to h: RequestHead) {
        backend.requests += 1
        let query = DemoQuery(target: h.targetString)
        let delay = (query.int("delay") ?? 0) + (query.path == "/health" || query.path == "/control" ? 0 : backend.baseDelay)
        if delay > 0 {
            waiting = true
            connection.setReading(false)
            let t = LoopTimer(loop: backend.loop) { [unowned self] in
                let session = self   // keeps the session alive even if write() ends the connection
                session.waiting = false
                session.write(h, query)
                session.timer = nil
                guard session.connection.isOpen else { return }
                session.connection.setReading(true)
                session.process()
            }
            timer = t
            t.schedule(milliseconds: Int64(delay))
            return
        }
        write(h, query)
    }

    private func write(_ h: RequestHead, _ query: DemoQuery) {
        let out = connection.output
        let path = query.path
        if path == "/ws", h.isUpgrade, let key = h.value(of: "sec-websocket-key").map(h.string) {
            let accept = Digest.base64(Digest.sha1(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)))
            var head = ResponseHeadWriter(status: 101)
            head.field("Upgrade", "websocket")
            head.field("Connection", "Upgrade")
            head.field("Sec-WebSocket-Accept", accept)
            out.append(head.finish())
            webSocket = WebSocketEcho()
            process()
            return
        }
        var body: [UInt8]
        var contentType = "text/plain"
        var extraFields: [(name: String, value: String)] = []
        var statusOverride: Int? = nil
        switch path {
        case "/health":
            if let state = backend.reportedState {
                body = Array("{\"state\":\"\(state)\"\(backend.reportedLoad.map { ",\"load\":\"\($0)\"" } ?? "")}\n".utf8)
                contentType = "application/json"
            } else {
                body = Array("ok\n".utf8)
            }
            if let load = backend.reportedLoad { extraFields.append(("Weir-Load", load)) }
            statusOverride = backend.healthStatus
        case "/control":
            if let load = query.string("load") { backend.reportedLoad = load.isEmpty ? nil : load }
            if let state = query.string("state") { backend.reportedState = state.isEmpty ? nil : state }
            if let health = query.int("health") { backend.healthStatus = health }
            body = Array("load=\(backend.reportedLoad ?? "-") state=\(backend.reportedState ?? "-") health=\(backend.healthStatus)\n".utf8)
        case "/echo":
            body = Array(echoJSON(h).utf8)
            contentType = "application/json"
        case "/stats":
            body = Array("{\"name\":\"\(backend.name)\",\"connections\":\(backend.connections),\"requests\":\(backend.requests)}\n".utf8)
            contentType = "application/json"
        default:
            if let text = query.string("body") {
                body = Array(text.utf8)
            } else if let size = query.int("size"), size >= 0 {
                body = []
                body.reserveCapacity(size)
                while body.count < size { body.append(contentsOf: backend.filler.prefix(size - body.count)) }
            } else {
                body = Array("\(backend.name)\n".utf8)
            }
        }
        let status = statusOverride ?? query.int("status") ?? 200
        if let location = query.string("location") { extraFields.append(("Location", location)) }
        // For rewriting tests: Refresh and Link fields, and the body's type (with `body=TEXT`).
        if let refresh = query.string("refresh") { extraFields.append(("Refresh", refresh)) }
        if let link = query.string("link") { extraFields.append(("Link", link)) }
        if let type = query.string("type"), path != "/health", ResponseHeadWriter.isValidFieldValue(type) { contentType = type }
        // Query parameters end up in the head: refuse what cannot be sent rather than split it.
        guard (100...599).contains(status), extraFields.allSatisfy({ ResponseHeadWriter.isValidFieldValue($0.value) }) else {
            reject(status: 400)
            return
        }
        let noBody = h.isHEAD || status == 204 || status == 304 || (100..<200).contains(status)
        let keepAlive = h.keepAlive && query.int("close") != 1
        var head = ResponseHeadWriter(status: status)
        head.field("X-Served-By", backend.name)
        head.field("Content-Type", contentType)
        for f in extraFields { head.field(f.name, f.value) }
        let chunked = query.int("chunked") == 1 && !noBody
        if chunked {
            head.field("Transfer-Encoding", "chunked")
            if query.int("trailers") == 1 { head.field("Trailer", "X-Checksum") }
        } else if query.int("close") == 1 {
            // close-delimited: no length at all
        } else if status != 204 && status != 304 {
            head.contentLength(body.count)
        }
        head.connection(keepAlive: keepAlive, peerIsHTTP10: h.version == .http10)
        out.append(head.finish())
        if noBody {
        } else if let stall = query.int("stall_after") {
            out.append(body.prefix(stall))
            waiting = true   // never answer anything else on this connection
            return
        } else if chunked {
            var offset = 0
            let piece = max(1, min(body.count, query.int("chunk") ?? 4096))
            while offset < body.count {
                let end = min(body.count, offset + piece)
                out.append(String(end - offset, radix: 16) + "\r\n")
                out.append(body[offset..<end])
                out.append("\r\n")
                offset = end
            }
            out.append(query.int("trailers") == 1 ? "0\r\nX-Checksum: \(body.count)\r\n\r\n" : "0\r\n\r\n")
        } else {
            out.append(body)
        }
        if !keepAlive {
            connection.closeAfterFlush()
            backend.ended(self)
        }
    }

    private func echoJSON(_ h: RequestHead) -> String {
        var headers: [String] = []
        for f in h.fields {
            headers.append("[\(jsonString(h.string(f.name))),\(jsonString(h.string(f.value)))]")
        }
        return "{\"server\":\(jsonString(backend.name)),\"method\":\(jsonString(h.methodString)),"
            + "\"target\":\(jsonString(h.targetString)),\"version\":\"\(h.version == .http11 ? "HTTP/1.1" : "HTTP/1.0")\","
            + "\"headers\":[\(headers.joined(separator: ","))],\"body_bytes\":\(bodyBytes),"
            + "\"body_sha256\":\"\(hash?.finish() ?? "")\"}\n"
    }
}

/// The query string of a demo request.
struct DemoQuery {
    let path: String
    private var items: [String: String] = [:]

    init(target: String) {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts.first ?? "/")
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                items[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
            }
        }
    }

    func int(_ key: String) -> Int? { items[key].flatMap { Int($0) } }
    func string(_ key: String) -> String? { items[key]?.removingPercentEncodingLite }
}

/// JSON string literal with the necessary escapes.
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

extension String {
    /// Decodes %XX escapes (enough for the demo's `location=` parameter).
    var removingPercentEncodingLite: String {
        var bytes: [UInt8] = []
        var it = Array(utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

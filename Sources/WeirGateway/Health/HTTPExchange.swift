import WeirHTTP
import WeirIO

/// One request and its response on a new connection, within a deadline: what health probes and
/// `weir status` need. Without a request it only connects (a TCP probe).
final class HTTPExchange: ConnectionHandler {
    enum Outcome {
        /// The TCP connect succeeded (no request was sent).
        case connected
        /// A complete response; `body` holds at most `maxBody` bytes of it.
        case response(ResponseHead, body: [UInt8])
        /// Why it failed, in a few words ("connection refused", "no answer within 1000 ms").
        case failed(String)
    }

    private let loop: EventLoop
    private var connection: Connection?
    private let request: [UInt8]?
    private let requestWasHEAD: Bool
    private let maxBody: Int
    private var completion: ((Outcome) -> Void)?
    private var deadline: LoopTimer?
    private var head: ResponseHead?
    private var body: [UInt8] = []
    private var reader = BodyReader.empty
    private var selfReference: HTTPExchange?
    private var failLater: LoopTimer?

    /// Starts connecting to `host`:`port` at once; `completion` runs exactly once on `loop`'s thread.
    init(loop: EventLoop, host: String, port: Int, request: [UInt8]?, tls: TLSClientContext? = nil, serverName: String? = nil,
         requestWasHEAD: Bool = false, preface: [UInt8] = [],
         timeoutMilliseconds: Int64, maxBody: Int = 64 * 1024, completion: @escaping (Outcome) -> Void) {
        self.loop = loop
        self.request = request
        self.requestWasHEAD = requestWasHEAD
        self.maxBody = maxBody
        self.completion = completion
        selfReference = self
        deadline = LoopTimer(loop: loop) { [unowned self] in
            self.finish(.failed("no answer within \(timeoutMilliseconds) ms"))
        }
        deadline?.schedule(milliseconds: timeoutMilliseconds)
        do {
            let c = try Connection.connect(loop: loop, host: host, port: port, handler: self, tls: tls, serverName: serverName,
                                           preface: preface)
            connection = c
            c.setReading(true)
            if let request { c.output.append(request) }
        } catch {
            // Report on the next loop pass so callers always get the outcome asynchronously.
            let message = "\(error)"
            let soon = LoopTimer(loop: loop) { [unowned self] in self.finish(.failed(message)) }
            soon.schedule(milliseconds: 0)
            failLater = soon
        }
    }

    func connectionReadable(_ c: Connection) { parse(atEnd: false) }
    func connectionWritable(_ c: Connection) {}

    func connection(_ c: Connection, event: ConnectionEvent) {
        switch event {
        case .connected:
            if request == nil { finish(.connected) }
        case .endOfStream:
            parse(atEnd: true)
            if completion != nil { finish(.failed(head == nil ? "closed without answering" : "closed in the middle of the response")) }
        case .failed(let error):
            finish(.failed(error.code != 0 ? error.description : "connection failed"))
        case .readTimeout, .writeTimeout:
            finish(.failed("timed out"))
        }
    }

    private func parse(atEnd: Bool) {
        guard let c = connection, completion != nil else { return }
        if head == nil {
            let result = c.input.withContiguousPrefix(65536) {
                ResponseHeadParser.parse($0, requestWasHEAD: requestWasHEAD, limits: ParserLimits())
            }
            switch result {
            case .needMore:
                return
            case .error(let e):
                finish(.failed("invalid response: \(e.reason)"))
                return
            case .complete(let h, let consumed):
                c.input.drain(consumed)
                if h.isInterim { parse(atEnd: atEnd); return }
                head = h
                reader = BodyReader(h.framing)
            }
        }
        guard let head else { return }
        while !reader.isComplete && body.count < maxBody {
            switch reader.next(available: c.input.count, prefix: { c.input.withContiguousPrefix($0, $1) }) {
            case .needMore:
                // At the end of the stream a close-delimited body is complete; any other is cut short.
                guard atEnd, reader.endOfStream() else { return }
            case .data(let n):
                take(n, from: c)
            case .framing(let n):
                c.input.drain(n)
            case .error(let e):
                finish(.failed("invalid \(reader.isChunked ? "chunked " : "")body: \(e.reason)"))
                return
            }
        }
        // Complete, or as much of the body as is kept.
        finish(.response(head, body: body))
    }

    private func take(_ n: Int, from c: Connection) {
        guard n > 0 else { return }
        let room = max(0, maxBody - body.count)
        if room > 0 { body += c.input.copyPrefix(min(n, room)) }
        c.input.drain(n)
    }

    private func finish(_ outcome: Outcome) {
        guard let completion else { return }
        self.completion = nil
        deadline?.cancel()
        connection?.close()
        connection = nil
        completion(outcome)
        selfReference = nil
    }
}

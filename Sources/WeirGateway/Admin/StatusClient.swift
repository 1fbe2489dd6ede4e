import WeirHTTP
import WeirIO

/// Fetches `GET /status` from an admin listener, for `weir status`.
public enum StatusClient {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        /// Nothing answered (not listening, or no answer in time), as opposed to an answer that says no.
        public var unreachable = false
    }

    /// Asks the admin listener at `host`:`port`; waits at most `timeoutMilliseconds`.
    /// Throws a `Failure` saying what went wrong (not listening, not JSON, wrong status).
    /// `token`: sent as `Authorization: Bearer` (a non-loopback listener needs it for reads too).
    public static func fetch(host: String, port: Int, timeoutMilliseconds: Int64 = 3000, token: String? = nil) throws -> StatusDocument {
        let body = try send(method: "GET", path: "/status", host: host, port: port, timeoutMilliseconds: timeoutMilliseconds,
                            token: token)
        do {
            return try StatusDocument.decode(body)
        } catch {
            throw Failure(description: "admin listener \(host):\(port) did not answer with a status document: \(error)")
        }
    }

    /// Sends `method path` to the admin listener and returns the body of a 2xx answer (202: accepted, e.g. a
    /// runtime change saved for the next reload).
    /// Throws a `Failure` with the listener's own message for any other status. `token`: the admin token,
    /// sent as `Authorization: Bearer <token>` (state changes need it; nil sends none).
    public static func send(method: String, path: String, host: String, port: Int, timeoutMilliseconds: Int64 = 3000,
                            token: String? = nil) throws -> [UInt8] {
        if host.hasPrefix("unix:") {
            return try sendOverUnixSocket(method: method, path: path, socket: String(host.dropFirst(5)),
                                          timeoutMilliseconds: timeoutMilliseconds, token: token)
        }
        let loop = try EventLoop()
        var result: HTTPExchange.Outcome = .failed("no answer")
        let shown = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let request = Array(("\(method) \(path) HTTP/1.1\r\nHost: \(shown)\r\nContent-Length: 0\r\nConnection: close\r\nUser-Agent: weir-cli\r\n"
                            + (token.map { "Authorization: Bearer \($0)\r\n" } ?? "") + "\r\n").utf8)
        _ = HTTPExchange(loop: loop, host: host, port: port, request: request, timeoutMilliseconds: timeoutMilliseconds,
                         maxBody: 16 << 20) { outcome in
            result = outcome
            loop.stop()
        }
        loop.run()
        switch result {
        case .response(let head, let body):
            guard (200..<300).contains(head.status) else {
                throw Failure(description: "admin listener \(shown) answered \(head.status): \(String(decoding: body, as: UTF8.self))")
            }
            return body
        case .failed(let why):
            throw Failure(description: "cannot reach the admin listener at \(shown): \(why) (is weir running, and is [admin] address set?)",
                          unreachable: true)
        case .connected:
            throw Failure(description: "no answer from \(shown)")
        }
    }

    /// `send` to an admin listener on the Unix socket at `socket` (`host` = "unix:/path"): the same
    /// request, answered once the listener closes (one request per connection).
    private static func sendOverUnixSocket(method: String, path: String, socket: String, timeoutMilliseconds: Int64,
                                           token: String?) throws -> [UInt8] {
        let request = Array(("\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n"
                             + "User-Agent: weir-cli\r\n" + (token.map { "Authorization: Bearer \($0)\r\n" } ?? "") + "\r\n").utf8)
        let answer: [UInt8]
        do {
            answer = try UnixStreamSocket.exchange(path: socket, request: request, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            throw Failure(description: "cannot reach the admin listener at unix:\(socket): \(error) (is weir running, and is [admin] address set?)",
                          unreachable: true)
        }
        let parsed = answer.withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: method == "HEAD", limits: ParserLimits()) }
        guard case .complete(let head, let consumed) = parsed else {
            throw Failure(description: "admin listener unix:\(socket) did not answer with an HTTP response")
        }
        let body = Array(answer[consumed...])
        guard (200..<300).contains(head.status) else {
            throw Failure(description: "admin listener unix:\(socket) answered \(head.status): \(String(decoding: body, as: UTF8.self))")
        }
        return body
    }
}

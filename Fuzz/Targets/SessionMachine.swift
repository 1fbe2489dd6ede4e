// libFuzzer target: the session machine fed random event sequences, through the same harness the
// unit tests use (Tests/WeirGatewayTests/SessionHarness.swift: byte arrays for the two connections,
// scripted routing, timers fired as events).
//
// The input is a program: each step takes one opcode byte, and byte events take their length from the
// next byte and their bytes from what follows (so seeds can be real requests and responses). Invariants
// beyond "never crash" (the harness also stops on any move or drop of bytes that are not buffered):
// - never forward bytes the parser did not accept: whatever reaches the server as a request body is a
//   valid prefix of a body of the request's framing (an independent BodyReader accepts it);
// - never two responses for one request: between two parsed request heads, at most one final answer
//   (a forwarded final head, an error, a local answer) goes to the client;
// - every attempt begun is ended by the time the session closes (no in-flight leak);
// - nothing happens after `.closeClient`.
@testable import WeirGateway
import WeirHTTP

@_cdecl("LLVMFuzzerTestOneInput")
public func sessionMachineFuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let program = inputBytes(data, size)
    var h = SessionHarness()
    var i = 0
    func next() -> UInt8? { guard i < program.count else { return nil }; defer { i += 1 }; return program[i] }
    func bytes() -> String {
        let n = Int(next() ?? 0)
        let end = min(program.count, i + n)
        defer { i = end }
        return String(decoding: program[i..<end], as: UTF8.self)
    }
    var steps = 0
    while let op = next(), steps < 200, !h.isClosed {
        steps += 1
        switch op % 16 {
        case 0, 1, 2: h.client(bytes())
        case 3, 4, 5: h.server(bytes())
        case 6: h.event(.clientEndOfStream)
        case 7:
            // Splicing, as the shell does it: only with nothing buffered from the server, at most
            // what the machine says is left of the body.
            let spliceable = h.machine.spliceableResponseBytes
            if op & 0x10 != 0, spliceable > 0, h.serverInput.isEmpty {
                h.event(.upstreamBodySpliced(min(spliceable, 1 + Int(next() ?? 0) * 257)))
            } else {
                h.event(.upstreamEndOfStream)
            }
        case 8: h.event(.upstreamFailed("reset"))
        case 9: h.event(.upstreamConnected)
        case 10: h.event(.timerFired(clientHandshaking: op & 0x10 != 0))
        case 11: h.event([.clientReadTimeout, .clientWriteTimeout, .upstreamReadTimeout, .upstreamWriteTimeout][Int(op >> 4) % 4])
        case 12: h.event(.drain)
        case 13: h.event(.queueRetry(timedOut: op & 0x10 != 0))
        case 14:
            // What the next routing answers: op >> 6 picks forward / answered / reject / queued.
            let target = SessionHarness.server(Int(op >> 4) & 1, retries: 1, rewrite: op & 0x20 != 0 ? ["text/html"] : [])
            h.routings = [[.forward(target), .answered(status: 307, keepAlive: op & 0x10 != 0),
                           .reject(status: 404, reason: "no route", retryAfter: nil), .queued][Int(op >> 6)]]
            h.retryRouting = op & 0x10 != 0 ? .forward(SessionHarness.server(2)) : .noAlternative
        default:
            h.attachPooled = op & 0x10 != 0
            h.connectFails = op & 0x20 != 0 ? "refused" : nil
        }
        checkOneAnswerPerRequest(h)
    }
    if h.isClosed {
        require(h.attemptsOpen == 0, "closed with \(h.attemptsOpen) attempt(s) still in flight")
        if let last = h.actions.lastIndex(where: { if case .closeClient = $0 { return true } else { return false } }) {
            require(last == h.actions.count - 1, "actions after closeClient: \(h.actions[(last + 1)...])")
        }
    }
    checkForwardedBody(h)
    return 0
}

/// At most one final answer (a forwarded final head or an error Weir wrote) per request: between two
/// request heads, parsed (`.count(.request)`) or not (`.logUnparsed`). Local answers are the routing's
/// alternative to forwarding, so they cannot meet a forwarded head.
private func checkOneAnswerPerRequest(_ h: SessionHarness) {
    var answers = 0
    for action in h.actions {
        switch action {
        case .count(.request), .logUnparsed: answers = 0
        case .sendError, .sendResponseHead: answers += 1
        default: break
        }
        require(answers <= 1, "two answers for one request: \(h.actions)")
    }
}

/// The request bytes that reached the server form, exchange after exchange, valid body prefixes: the
/// machine only moves client bytes the body reader accepted. (Heads are rebuilt by the shell from the
/// parsed head, so here only bodies and tunnels pass; a tunnel ends the check.)
private func checkForwardedBody(_ h: SessionHarness) {
    if h.machine.isTunnel || h.actions.contains(.startTunnel) { return }
    guard let head = h.machine.request, h.sentToServer.count > 0 else { return }
    var reader = BodyReader(head.framing)
    let sent = h.sentToServer
    // Bodies of earlier exchanges precede this one's; only a single-exchange run is checked fully.
    let exchanges = h.actions.filter { $0 == .count(.request) }.count
    guard exchanges == 1 else { return }
    sent.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
            switch reader.next(rest, available: rest.count) {
            case .data(let n), .framing(let n): offset += n
            case .needMore: require(false, "bytes sent to the server past what a body reader accepts: \(show(sent))"); return
            case .error(let e): require(false, "the server got a malformed body (\(e)): \(show(sent))"); return
            }
            if reader.isComplete { require(offset == raw.count, "bytes sent past the end of the body: \(show(sent))"); return }
        }
    }
}

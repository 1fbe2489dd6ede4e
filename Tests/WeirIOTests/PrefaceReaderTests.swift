import Glibc
import Testing
@testable import WeirIO

/// Collects what arrives on an accepted connection until `expected` bytes are in.
private final class Collector: ConnectionHandler {
    var received: [UInt8] = []
    let expected: Int
    let loop: EventLoop
    var connection: Connection?
    init(expected: Int, loop: EventLoop) { self.expected = expected; self.loop = loop }
    func connectionReadable(_ c: Connection) {
        received += c.input.copyPrefix(c.input.count)
        c.input.drainAll()
        if received.count >= expected { loop.stop() }
    }
    func connectionWritable(_ c: Connection) {}
    func connection(_ c: Connection, event: ConnectionEvent) { loop.stop() }
}

private final class Quiet: ConnectionHandler {
    func connectionReadable(_ c: Connection) {}
    func connectionWritable(_ c: Connection) {}
    func connection(_ c: Connection, event: ConnectionEvent) {}
}

/// A header that ends at the first "\n": what `examine` is for the PROXY parser in the gateway.
private func lineHeader(_ bytes: UnsafeRawBufferPointer) -> PrefaceReader.Verdict {
    if let end = bytes.firstIndex(of: 0x0A) { return .consume(end + 1) }
    return bytes.first == UInt8(ascii: "!") ? .refuse("bang") : .needMore
}

@Suite struct PrefaceReaderTests {
    /// The header comes in two pieces; exactly its bytes are taken, and what follows is read by the
    /// connection made on the socket afterwards.
    @Test func takesExactlyTheHeaderAndLeavesTheRestInTheSocket() throws {
        let loop = try EventLoop()
        let collector = Collector(expected: 4, loop: loop)
        var readers: [PrefaceReader] = []
        var outcome = ""
        let listener = try ListeningSocket(loop: loop, host: "127.0.0.1", port: 0) { fd, peer in
            readers.append(PrefaceReader(loop: loop, fd: fd, maxBytes: 64, timeoutMilliseconds: 5_000,
                                         examine: lineHeader) { _, result in
                guard case .ready(let fd) = result else { outcome = "\(result)"; loop.stop(); return }
                outcome = "ready"
                let c = Connection.accepted(loop: loop, fd: fd, peer: peer)!
                c.handler = collector
                collector.connection = c
            })
        }
        let quiet = Quiet()
        let client = try Connection.connect(loop: loop, host: "127.0.0.1", port: listener.port, handler: quiet)
        client.output.append(Array("HEA".utf8))
        let later = LoopTimer(loop: loop) { client.output.append(Array("DER\nrest".utf8)) }
        later.schedule(milliseconds: 100)
        let guardTimer = LoopTimer(loop: loop) { loop.stop() }
        guardTimer.schedule(milliseconds: 10_000)
        loop.run()
        #expect(outcome == "ready")
        #expect(String(decoding: collector.received, as: UTF8.self) == "rest")
        client.close()
        collector.connection?.close()
    }

    @Test func refusedAndTimedOutHeadersCloseTheSocket() throws {
        let loop = try EventLoop()
        var outcomes: [String] = []
        var readers: [PrefaceReader] = []
        let listener = try ListeningSocket(loop: loop, host: "127.0.0.1", port: 0) { fd, _ in
            readers.append(PrefaceReader(loop: loop, fd: fd, maxBytes: 64, timeoutMilliseconds: 200,
                                         examine: lineHeader) { _, result in
                outcomes.append("\(result)")
                if outcomes.count == 2 { loop.stop() }
            })
        }
        let quiet = Quiet()
        let bang = try Connection.connect(loop: loop, host: "127.0.0.1", port: listener.port, handler: quiet)
        bang.output.append(Array("!x".utf8))
        let slow = try Connection.connect(loop: loop, host: "127.0.0.1", port: listener.port, handler: quiet)
        slow.output.append(Array("never ends".utf8))
        let guardTimer = LoopTimer(loop: loop) { loop.stop() }
        guardTimer.schedule(milliseconds: 10_000)
        loop.run()
        #expect(outcomes.sorted() == [#"refused("bang")"#, "timedOut"])
        bang.close()
        slow.close()
    }

    /// An outgoing connection's preface goes out first, before what was appended to its output.
    @Test func anOutgoingPrefaceIsSentBeforeTheOutput() throws {
        let loop = try EventLoop()
        let collector = Collector(expected: 10, loop: loop)
        let listener = try ListeningSocket(loop: loop, host: "127.0.0.1", port: 0) { fd, peer in
            let c = Connection.accepted(loop: loop, fd: fd, peer: peer)!
            c.handler = collector
            collector.connection = c
        }
        let quiet = Quiet()
        let client = try Connection.connect(loop: loop, host: "127.0.0.1", port: listener.port, handler: quiet,
                                            preface: Array("PROXY ".utf8))
        client.output.append(Array("GET ".utf8))
        let guardTimer = LoopTimer(loop: loop) { loop.stop() }
        guardTimer.schedule(milliseconds: 10_000)
        loop.run()
        #expect(String(decoding: collector.received, as: UTF8.self) == "PROXY GET ")
        #expect(collector.connection?.localAddress?.host == "127.0.0.1")
        #expect(collector.connection?.localAddress?.port == listener.port)
        client.close()
        collector.connection?.close()
    }
}

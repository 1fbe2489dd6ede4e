import Glibc
import Testing
import Foundation
import Synchronization
@testable import WeirIO

/// Echo server + client over loopback on one loop: bytes written come back, end of stream is seen.
private final class Echo: ConnectionHandler {
    var server: Connection?
    func connectionReadable(_ c: Connection) { c.input.moveAll(to: c.output) }
    func connectionWritable(_ c: Connection) {}
    func connection(_ c: Connection, event: ConnectionEvent) { if case .endOfStream = event { c.closeAfterFlush() } }
}

private final class Client: ConnectionHandler {
    var received: [UInt8] = []
    var events: [String] = []
    let expected: Int
    let loop: EventLoop
    init(expected: Int, loop: EventLoop) { self.expected = expected; self.loop = loop }
    func connectionReadable(_ c: Connection) {
        received += c.input.copyPrefix(c.input.count)
        c.input.drainAll()
        if received.count >= expected { c.close(); loop.stop() }
    }
    func connectionWritable(_ c: Connection) {}
    func connection(_ c: Connection, event: ConnectionEvent) {
        events.append("\(event)")
        if case .failed = event { c.close(); loop.stop() }
    }
}

/// Reads everything, and stops the loop once the stream ended.
private final class ReaderUntilEnd: ConnectionHandler {
    var received: [UInt8] = []
    var ending: String?
    let loop: EventLoop
    init(loop: EventLoop) { self.loop = loop }
    func connectionReadable(_ c: Connection) {
        received += c.input.copyPrefix(c.input.count)
        c.input.drainAll()
    }
    func connectionWritable(_ c: Connection) {}
    func connection(_ c: Connection, event: ConnectionEvent) {
        ending = "\(event)"
        c.close()
        loop.stop()
    }
}

@Suite struct ConnectionTests {
    @Test func bytesRoundTripThroughALoopbackEchoIncludingMoreThanOneRead() throws {
        let loop = try EventLoop()
        let echo = Echo()
        let listener = try ListeningSocket(loop: loop, host: "127.0.0.1", port: 0) { fd, peer in
            let c = Connection.accepted(loop: loop, fd: fd, peer: peer)!
            c.handler = echo
            echo.server = c
        }
        let payload = (0..<(1 << 20)).map { UInt8($0 % 251) }
        let client = Client(expected: payload.count, loop: loop)
        let c = try Connection.connect(loop: loop, host: "127.0.0.1", port: listener.port, handler: client)
        c.setReading(true)
        c.output.append(payload)
        let guardTimer = LoopTimer(loop: loop) { loop.stop() }
        guardTimer.schedule(milliseconds: 10_000)
        loop.run()
        #expect(client.received == payload)
        #expect(client.events.first == "connected")
    }

    @Test func connectToAClosedPortFails() throws {
        let loop = try EventLoop()
        // Bind then close to learn a port where nothing listens.
        let port = try ListeningSocket(loop: loop, host: "127.0.0.1", port: 0) { _, _ in }.port
        let client = Client(expected: 1, loop: loop)
        let c = try Connection.connect(loop: loop, host: "127.0.0.1", port: port, handler: client)
        c.setReading(true)
        let guardTimer = LoopTimer(loop: loop) { loop.stop() }
        guardTimer.schedule(milliseconds: 10_000)
        loop.run()
        #expect(client.events.count == 1)
        #expect(client.events.first?.contains("failed") == true)
    }

    @Test func workHandedOverFromAnotherThreadRunsOnTheLoop() throws {
        let loop = try EventLoop()
        let ran = Mutex(0)
        let guardTimer = LoopTimer(loop: loop) { loop.stop() }
        guardTimer.schedule(milliseconds: 10_000)
        let thread = Thread { for _ in 0..<100 { loop.execute { ran.withLock { $0 += 1 }; if ran.withLock({ $0 }) == 100 { loop.stop() } } } }
        thread.start()
        loop.run()
        #expect(ran.withLock { $0 } == 100)
    }

    /// The peer's address text, for sources across the whole loopback range 127/8 (one-, two- and
    /// three-digit parts): what X-Forwarded-For and the access log carry.
    @Test(arguments: ["127.0.0.1", "127.100.20.3", "127.255.9.99", "127.10.0.200"])
    func acceptedPeersAreNamedByTheirDottedQuad(source: String) throws {
        let loop = try EventLoop()
        var seen: String? = nil
        let listener = try ListeningSocket(loop: loop, host: "127.0.0.1", port: 0) { fd, peer in
            seen = peer.host
            Glibc.close(fd)
            loop.stop()
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(listener.port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(bound == 0)
        let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(connected == 0)
        let guardTimer = LoopTimer(loop: loop) { loop.stop() }
        guardTimer.schedule(milliseconds: 10_000)
        loop.run()
        #expect(seen == source)
    }

    /// A closed and released connection's libevent events and buffers serve the loop's next
    /// connection (no event_new or evbuffer_new for it): emptied, and calling back the new one.
    @Test func theNextConnectionReusesTheEventsAndBuffersOfAReleasedOne() throws {
        let loop = try EventLoop()
        func pair() -> (Int32, Int32) {
            var fds: [Int32] = [-1, -1]
            #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
            return (fds[0], fds[1])
        }
        let peer = PeerAddress(host: "test", port: 0)
        let (a1, a2) = pair()
        var first: Connection? = Connection.accepted(loop: loop, fd: a1, peer: peer)
        let firstPeer = Connection.accepted(loop: loop, fd: a2, peer: peer)!
        let (firstInput, firstOutput) = (first!.input.raw, first!.output.raw)
        first!.input.append(Array("left over".utf8))   // what a connection holds at its end is dropped
        first!.close()
        #expect(loop.spareCounts.events == 2 && loop.spareCounts.buffers == 0)   // events at close
        first = nil
        #expect(loop.spareCounts.buffers == 1)                                   // buffers at release

        let (b1, b2) = pair()
        let second = Connection.accepted(loop: loop, fd: b1, peer: peer)!
        #expect(second.input.raw == firstInput && second.output.raw == firstOutput)
        #expect(second.input.isEmpty && second.output.isEmpty)
        #expect(loop.spareCounts.events == 0 && loop.spareCounts.buffers == 0)
        // The reused output buffer calls back the new connection: what is appended is sent.
        let reader = ReaderUntilEnd(loop: loop)
        let secondPeer = Connection.accepted(loop: loop, fd: b2, peer: peer)!
        secondPeer.handler = reader
        second.output.append(Array("hello".utf8))
        second.closeAfterFlush(linger: false)
        let guardTimer = LoopTimer(loop: loop) { loop.stop() }
        guardTimer.schedule(milliseconds: 10_000)
        loop.run()
        #expect(reader.received == Array("hello".utf8) && reader.ending == "endOfStream")
        firstPeer.close()
    }

    @Test func nonNumericAddressesAreRefusedWithTheirName() throws {
        let loop = try EventLoop()
        #expect(throws: IOError.self) { try ListeningSocket(loop: loop, host: "localhost", port: 0) { _, _ in } }
    }
}

/// Reads everything and records how the stream ended; closes its side once it saw the end.
private final class Reader: ConnectionHandler {
    var received: [UInt8] = []
    var ending: String?
    func connectionReadable(_ c: Connection) {
        received += c.input.copyPrefix(c.input.count)
        c.input.drainAll()
    }
    func connectionWritable(_ c: Connection) {}
    func connection(_ c: Connection, event: ConnectionEvent) {
        if case .connected = event { return }
        ending = "\(event)"
        c.close()
    }
}

@Suite struct GracefulCloseTests {
    /// closeAfterFlush sends the output and a FIN (the peer sees the end of the stream, not a
    /// reset), then waits for the peer's own close before closing: until then the loop counts it
    /// as flushing. Calling it twice changes nothing.
    @Test func closeAfterFlushSendsTheAnswerThenAFinAndEndsWhenThePeerCloses() throws {
        let loop = try EventLoop()
        var server: Connection?
        var countedAfterTwoCalls = -1
        let listener = try ListeningSocket(loop: loop, host: "127.0.0.1", port: 0) { fd, peer in
            let c = Connection.accepted(loop: loop, fd: fd, peer: peer)!
            c.output.append(Array("answer".utf8))
            c.closeAfterFlush()
            c.closeAfterFlush()
            countedAfterTwoCalls = loop.flushingConnections
            server = c
        }
        let reader = Reader()
        let client = try Connection.connect(loop: loop, host: "127.0.0.1", port: listener.port, handler: reader)
        client.setReading(true)
        client.output.append(Array("more bytes the server never reads".utf8))
        let watch = LoopTimer(loop: loop, repeating: true) {
            if reader.ending != nil && loop.flushingConnections == 0 && server?.isOpen == false { loop.stop() }
        }
        watch.schedule(milliseconds: 5)
        let guardTimer = LoopTimer(loop: loop) { loop.stop() }
        guardTimer.schedule(milliseconds: 10_000)
        loop.run()
        #expect(reader.received == Array("answer".utf8))
        #expect(reader.ending == "endOfStream")
        #expect(countedAfterTwoCalls == 1)
        #expect(loop.flushingConnections == 0)
        #expect(server?.isOpen == false)
    }
}

/// Records what a stream connection reports to its endpoint.
private final class RecordingEndpoint: StreamEndpoint {
    var grew: [ObjectIdentifier] = []
    var taken: [Int] = []
    func streamOutputGrew(_ connection: Connection) { grew.append(ObjectIdentifier(connection)) }
    func streamReadingChanged(_ connection: Connection) {}
    func streamInputTaken(_ connection: Connection, count: Int) { taken.append(count) }
    func streamClosed(_ connection: Connection, flushed: Bool) {}
}

@Suite struct StreamConnectionBufferTests {
    /// A released stream connection's buffers serve the next stream connection, emptied, and call
    /// back the new connection's endpoint, not the old one's.
    @Test func theNextStreamConnectionReusesTheBuffersOfAReleasedOneAndCallsBackItsOwnEndpoint() throws {
        let loop = try EventLoop()
        let peer = PeerAddress(host: "test", port: 0)
        let firstEndpoint = RecordingEndpoint()
        var first: Connection? = Connection.stream(loop: loop, peer: peer, local: nil, secure: false, tlsVersion: nil,
                                                   endpoint: firstEndpoint)
        let (input, output) = (first!.input.raw, first!.output.raw)
        first!.output.append(Array("left".utf8))
        first!.input.append(Array("over".utf8))
        #expect(firstEndpoint.grew.count == 1)
        first!.close()
        first = nil
        #expect(loop.spareCounts.streamBuffers == 1 && loop.spareCounts.buffers == 0)
        #expect(firstEndpoint.taken.isEmpty)   // the release drained without telling anyone

        let secondEndpoint = RecordingEndpoint()
        let second = Connection.stream(loop: loop, peer: peer, local: nil, secure: false, tlsVersion: nil,
                                       endpoint: secondEndpoint)
        #expect(second.input.raw == input && second.output.raw == output)
        #expect(second.input.isEmpty && second.output.isEmpty && loop.spareCounts.streamBuffers == 0)
        second.output.append(Array("hello".utf8))
        second.input.append(Array("abc".utf8))
        second.input.drain(2)
        #expect(secondEndpoint.grew == [ObjectIdentifier(second)] && secondEndpoint.taken == [2])
        #expect(firstEndpoint.grew.count == 1 && firstEndpoint.taken.isEmpty)
        second.close()
    }
}

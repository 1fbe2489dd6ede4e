import Testing
import WeirIO

/// The UDP socket the peer beacons use: datagrams arrive whole with their sender's address, an
/// oversized one is flagged as cut, and a bind that cannot be made names the address.
@Suite struct UDPSocketTests {
    @Test func datagramsArriveWholeWithTheSendersAddress() throws {
        let loop = try EventLoop()
        var received: [([UInt8], PeerAddress, Bool)] = []
        let receiver = try UDPSocket(loop: loop, host: "127.0.0.1", port: 0, maximumDatagram: 16) { bytes, from, truncated in
            received.append((bytes, from, truncated))
            if received.count == 3 { loop.stop() }
        }
        let sender = try UDPSocket(loop: loop, host: "127.0.0.1", port: 0) { _, _, _ in }
        #expect(sender.send(Array("one".utf8), host: "127.0.0.1", port: receiver.port))
        #expect(sender.send(Array(repeating: 7, count: 16), host: "127.0.0.1", port: receiver.port))
        #expect(sender.send(Array(repeating: 9, count: 40), host: "127.0.0.1", port: receiver.port))
        // A bounded wait: the loop stops after the third datagram or after 5 s.
        let guardTimer = LoopTimer(loop: loop) { loop.stop() }
        guardTimer.schedule(milliseconds: 5000)
        loop.run()
        #expect(received.count == 3)
        guard received.count == 3 else { return }
        #expect(received[0].0 == Array("one".utf8) && !received[0].2)
        #expect(received[0].1.host == "127.0.0.1" && received[0].1.port == sender.port)
        #expect(received[1].0.count == 16 && !received[1].2)
        #expect(received[2].2, "a datagram longer than the maximum is reported as cut")
        #expect(!sender.send([1], host: "not-an-address", port: 1))
        #expect(sender.sendFailures == 1)
    }

    @Test func aBindThatCannotBeMadeNamesTheAddress() throws {
        let loop = try EventLoop()
        let first = try UDPSocket(loop: loop, host: "127.0.0.1", port: 0) { _, _, _ in }
        // SO_REUSEADDR lets a UDP port be bound twice on Linux only with SO_REUSEPORT: not here.
        #expect(throws: IOError.self) { _ = try UDPSocket(loop: loop, host: "192.0.2.1", port: first.port) { _, _, _ in } }
        do {
            _ = try UDPSocket(loop: loop, host: "192.0.2.1", port: 7946) { _, _, _ in }
        } catch {
            #expect("\(error)".contains("192.0.2.1:7946"))
        }
    }
}

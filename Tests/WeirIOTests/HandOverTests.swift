import Glibc
import Testing
@testable import WeirIO

/// A blocking loopback client that connects (the kernel completes the handshake: the connection
/// waits in the listener's accept queue) and sends one line.
private func queuedClient(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    try #require(connected == 0)
    _ = "ping\n".withCString { send(fd, $0, 5, 0) }
    return fd
}

/// What the client reads: the server's answer, "EOF", or the errno name of a reset.
private func answer(_ fd: Int32) -> String {
    var buffer = [UInt8](repeating: 0, count: 64)
    let n = recv(fd, &buffer, 64, 0)
    close(fd)
    if n > 0 { return String(decoding: buffer[0..<n], as: UTF8.self) }
    if n == 0 { return "EOF" }
    return SystemCall.lastErrno == ECONNRESET ? "ECONNRESET" : "errno \(SystemCall.lastErrno)"
}

/// Runs `loop` until `done()` or 5 s.
private func run(_ loop: EventLoop, until done: @escaping () -> Bool) {
    let poll = LoopTimer(loop: loop, repeating: true) { if done() { loop.stop() } }
    poll.schedule(milliseconds: 5)
    let limit = LoopTimer(loop: loop) { loop.stop() }
    limit.schedule(milliseconds: 5_000)
    loop.run()
}

/// The kernel behaviour a binary upgrade rests on: the listening socket is one object however many
/// descriptors name it, so closing the old process's descriptor keeps it, with every connection
/// waiting in its accept queue, for whoever holds another (the new process). Closing the last
/// descriptor resets them: that is what the hand-over avoids.
@Suite(.serialized) struct HandOverTests {
    static let clients = 6

    @Test func queuedConnectionsSurviveTheOldDescriptorAndAreAcceptedThroughTheHandedOverCopy() throws {
        let old = try EventLoop()   // never run: nothing is accepted through the old descriptor
        let listener = try ListeningSocket(loop: old, adopting: try ListeningSocket.bind(host: "127.0.0.1", port: 0), handOver: true) { fd, _ in close(fd) }
        let address = "127.0.0.1:\(listener.port)"
        let fds = try (0..<Self.clients).map { _ in try queuedClient(port: listener.port) }
        let copies = try ListeningSocket.handOverCopies()
        let mine = try #require(copies.first { $0.address == address })
        for c in copies where c.fd != mine.fd { close(c.fd) }
        listener.close()
        #expect(try ListeningSocket.handOverCopies().allSatisfy { $0.address != address }, "a closed socket is no longer handed over")

        let new = try EventLoop()
        var accepted = 0
        let adopted = try ListeningSocket(loop: new, adopting: mine.fd) { fd, _ in
            accepted += 1
            _ = "ok".withCString { send(fd, $0, 2, Int32(MSG_NOSIGNAL)) }
            close(fd)
        }
        run(new) { accepted == Self.clients }
        #expect(adopted.port == listener.port)
        #expect(accepted == Self.clients)
        #expect(fds.map(answer) == Array(repeating: "ok", count: Self.clients))
        adopted.close()
    }

    @Test func closingTheLastDescriptorResetsTheQueuedConnections() throws {
        let loop = try EventLoop()
        let listener = try ListeningSocket(loop: loop, host: "127.0.0.1", port: 0) { fd, _ in close(fd) }
        let fds = try (0..<Self.clients).map { _ in try queuedClient(port: listener.port) }
        listener.close()
        #expect(fds.map(answer) == Array(repeating: "ECONNRESET", count: Self.clients))
    }

    @Test func onlySocketsMarkedForTheHandOverAreCopied() throws {
        let loop = try EventLoop()
        let plain = try ListeningSocket(loop: loop, host: "127.0.0.1", port: 0) { fd, _ in close(fd) }
        let marked = try ListeningSocket(loop: loop, adopting: try ListeningSocket.bind(host: "127.0.0.1", port: 0), handOver: true) { fd, _ in close(fd) }
        let copies = try ListeningSocket.handOverCopies()
        defer { for c in copies { close(c.fd) } }
        #expect(copies.contains { $0.address == "127.0.0.1:\(marked.port)" })
        #expect(!copies.contains { $0.address == "127.0.0.1:\(plain.port)" })
        let copy = try #require(copies.first { $0.address == "127.0.0.1:\(marked.port)" })
        #expect(try InheritedSocket.address(of: copy.fd) == "127.0.0.1:\(marked.port)")
        #expect(fcntl(copy.fd, F_GETFD) & FD_CLOEXEC != 0, "copies are close-on-exec until the spawn passes them")
    }

    @Test func aDescriptorThatIsNotAListeningSocketIsRefused() throws {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(throws: IOError.self) { try InheritedSocket.address(of: fds[0]) }
    }
}

import Foundation
import Glibc
import Testing
@testable import WeirGateway

/// sd_notify's wire format over a socket the test binds, and the watchdog's pure rules.
@Suite struct ServiceNotifierTests {
    /// A bound AF_UNIX datagram socket (path, or abstract when `name` starts with "@").
    final class Receiver {
        let fd: Int32
        init(_ name: String) throws {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var bytes = Array(name.utf8)
            let abstract = bytes.first == UInt8(ascii: "@")
            if abstract { bytes[0] = 0 }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + bytes.count + (abstract ? 0 : 1))
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        deinit { close(fd) }
        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
        }
    }

    static func temporaryPath() -> String {
        NSTemporaryDirectory() + "weir-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    }

    @Test func sendsEveryMessageToAPathSocket() throws {
        let path = Self.temporaryPath()
        defer { unlink(path) }
        let receiver = try Receiver(path)
        let notifier = ServiceNotifier(environment: ["NOTIFY_SOCKET": path])
        #expect(notifier.isEnabled)
        notifier.ready(status: "serving 1 listener,\nup")
        #expect(receiver.receive() == "READY=1\nSTATUS=serving 1 listener, up")
        notifier.reloading()
        let reloading = try #require(receiver.receive())
        #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        let usec = try #require(UInt64(reloading.split(separator: "=").last!))
        let now = ServiceNotifier.monotonicMicroseconds()
        #expect(usec <= now && now - usec < 5_000_000)
        notifier.readyAfterReload(status: "reload ok")
        #expect(receiver.receive() == "READY=1\nSTATUS=reload ok")
        notifier.status("x")
        #expect(receiver.receive() == "STATUS=x")
        notifier.mainPID(4242)
        #expect(receiver.receive() == "MAINPID=4242")
        notifier.watchdog()
        #expect(receiver.receive() == "WATCHDOG=1")
        notifier.stopping()
        #expect(receiver.receive() == "STOPPING=1")
    }

    @Test func sendsToAnAbstractSocket() throws {
        let name = "@weir-notify-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let receiver = try Receiver(name)
        ServiceNotifier(socket: name).watchdog()
        #expect(receiver.receive() == "WATCHDOG=1")
    }

    @Test func withoutNotifySocketEverythingIsANoOp() {
        let notifier = ServiceNotifier(environment: [:])
        #expect(!notifier.isEnabled)
        notifier.ready(status: "ignored")   // nothing to send to, nothing thrown
        #expect(!ServiceNotifier(socket: "").isEnabled)
        #expect(!ServiceNotifier(socket: "/" + String(repeating: "x", count: 200)).isEnabled)
    }

    @Test func aMissingListenerIsNotAnError() {
        ServiceNotifier(socket: Self.temporaryPath()).ready(status: "nobody listens")
    }

    @Test func watchdogPeriodHonoursWatchdogPid() {
        #expect(ServiceWatchdog.periodMicroseconds(environment: ["WATCHDOG_USEC": "10000000"], pid: 7) == 10_000_000)
        #expect(ServiceWatchdog.periodMicroseconds(environment: ["WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "7"], pid: 7) == 10_000_000)
        #expect(ServiceWatchdog.periodMicroseconds(environment: ["WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "8"], pid: 7) == nil)
        #expect(ServiceWatchdog.periodMicroseconds(environment: ["WATCHDOG_USEC": "0"], pid: 7) == nil)
        #expect(ServiceWatchdog.periodMicroseconds(environment: ["WATCHDOG_USEC": "soon"], pid: 7) == nil)
        #expect(ServiceWatchdog.periodMicroseconds(environment: [:], pid: 7) == nil)
    }

    @Test func aWorkerThatDidNotTurnIsStalledAFinishedOneIsNot() {
        #expect(ServiceWatchdog.stalled(previous: [1, 5], current: [2, 6]).isEmpty)
        #expect(ServiceWatchdog.stalled(previous: [1, 5], current: [2, 5]) == [1])
        #expect(ServiceWatchdog.stalled(previous: [1, nil], current: [2, nil]).isEmpty)
        #expect(ServiceWatchdog.stalled(previous: [3, 5], current: [nil, 5]) == [1])
    }

    @Test func heartbeatCountsUntilFinished() {
        let heartbeat = WorkerHeartbeat()
        let before = heartbeat.reading
        heartbeat.beat(worker: 99)
        #expect(heartbeat.reading != before)
        heartbeat.finish()
        #expect(heartbeat.reading == nil)
    }

    @Test func testFaultParsesOnlyItsOneForm() {
        let fault = TestFault.parse("block-worker-3-after-ms=2500", now: 10)
        #expect(fault?.worker == 3 && fault?.afterNanoseconds == 2_500_000_000 && fault?.startNanoseconds == 10)
        #expect(TestFault.parse("block-worker-x-after-ms=1", now: 0) == nil)
        #expect(TestFault.parse("block-worker-1-after-ms=", now: 0) == nil)
        #expect(TestFault.parse("block-everything", now: 0) == nil)
    }
}

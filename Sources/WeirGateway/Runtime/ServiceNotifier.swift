import Foundation
import WeirIO

/// systemd's service notification protocol (sd_notify(3)) without libsystemd: newline-separated
/// `KEY=value` assignments in one datagram to the AF_UNIX socket named by `$NOTIFY_SOCKET`
/// (a path, or "@name" for the abstract namespace).
///
/// Without `$NOTIFY_SOCKET` (not started by systemd, or `Type=` is not notify) every call is a
/// no-op that allocates nothing. A failed send is ignored, as sd_notify's callers do: the service
/// keeps serving and systemd's own timeouts say what went wrong.
public struct ServiceNotifier: Sendable {
    private let sender: UnixDatagramSender?

    /// True when `$NOTIFY_SOCKET` named a socket that could be opened.
    public var isEnabled: Bool { sender != nil }

    /// Reads `$NOTIFY_SOCKET` from `environment` (the process's by default).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.init(socket: environment["NOTIFY_SOCKET"])
    }

    /// Sends to `socket` (a path or "@abstract"); nil or empty: disabled.
    public init(socket: String?) {
        sender = socket.flatMap { UnixDatagramSender(destination: $0) }
    }

    /// `READY=1`: every listener is bound and the workers run (systemd's start job completes).
    public func ready(status: String) {
        send { "READY=1\nSTATUS=\(Self.oneLine(status))" }
    }

    /// `RELOADING=1` with `MONOTONIC_USEC` (CLOCK_MONOTONIC, µs): a reload has begun; systemd
    /// holds the reload job until the next `READY=1` (`readyAfterReload`).
    public func reloading() {
        send { "RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())" }
    }

    /// `READY=1` after a reload, with the outcome as `STATUS` (also when the reload was refused
    /// and the old configuration keeps serving: the service is ready either way).
    public func readyAfterReload(status: String) {
        send { "READY=1\nSTATUS=\(Self.oneLine(status))" }
    }

    /// `STOPPING=1`: the drain has begun.
    public func stopping() {
        send { "STOPPING=1" }
    }

    /// `STATUS=`: the one line `systemctl status` shows.
    public func status(_ text: String) {
        send { "STATUS=\(Self.oneLine(text))" }
    }

    /// `MAINPID=`: another process (a new binary taking over) is now the service's main process.
    /// systemd accepts it from a process other than the main one only with `NotifyAccess=all`.
    public func mainPID(_ pid: Int32) {
        send { "MAINPID=\(pid)" }
    }

    /// `WATCHDOG=1`: the keep-alive ping `WatchdogSec=` expects (see `ServiceWatchdog`).
    public func watchdog() {
        send { "WATCHDOG=1" }
    }

    /// Builds the message only when there is somewhere to send it.
    private func send(_ message: () -> String) {
        guard let sender else { return }
        sender.send(Array(message().utf8))
    }

    /// A value must not contain a newline (it would start another assignment).
    static func oneLine(_ text: String) -> String {
        text.replacingOccurrences(of: "\n", with: " ")
    }

    /// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}

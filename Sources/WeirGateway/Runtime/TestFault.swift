import Foundation

/// TEST ONLY: faults injected on purpose so the end-to-end tests can watch Weir react (today: the
/// systemd watchdog withholding its pings). Read once from `$WEIR_TEST_FAULT` at first use; unset
/// in production, where the only cost is one nil check per worker tick.
///
/// `WEIR_TEST_FAULT=block-worker-N-after-ms=M`: M milliseconds after start, worker N's thread
/// sleeps in its loop forever (a stuck worker: it serves nothing and never drains).
struct TestFault: Sendable {
    let worker: Int
    let afterNanoseconds: UInt64
    let startNanoseconds: UInt64

    /// The fault `$WEIR_TEST_FAULT` asks for, parsed once.
    static let current: TestFault? = {
        guard let text = ProcessInfo.processInfo.environment["WEIR_TEST_FAULT"] else { return nil }
        let fault = parse(text, now: DispatchTime.now().uptimeNanoseconds)
        FileHandle.standardError.write(Data((fault == nil
            ? "weir: WEIR_TEST_FAULT=\(text) is not understood (expected block-worker-N-after-ms=M): ignored\n"
            : "weir: TEST FAULT armed: \(text)\n").utf8))
        return fault
    }()

    /// "block-worker-N-after-ms=M", else nil.
    static func parse(_ text: String, now: UInt64) -> TestFault? {
        let prefix = "block-worker-", middle = "-after-ms="
        guard text.hasPrefix(prefix), let split = text.range(of: middle),
              let worker = Int(text[text.index(text.startIndex, offsetBy: prefix.count)..<split.lowerBound]),
              let ms = UInt64(text[split.upperBound...]), worker >= 0 else { return nil }
        return TestFault(worker: worker, afterNanoseconds: ms * 1_000_000, startNanoseconds: now)
    }

    /// On worker `worker`'s thread: never returns once the fault is due for this worker.
    func blockIfDue(worker: Int) {
        guard worker == self.worker, DispatchTime.now().uptimeNanoseconds - startNanoseconds >= afterNanoseconds else { return }
        FileHandle.standardError.write(Data("weir: TEST FAULT: blocking weir-worker-\(worker) forever\n".utf8))
        while true { sleep(3600) }
    }
}

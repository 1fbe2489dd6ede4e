import WeirIO

/// Socket-to-socket relay of response bodies: once the rest of a response body is a plain
/// Content-Length body passed on as received, and both connections are plain TCP, its bytes go
/// server socket → pipe → client socket with splice(2) instead of through Weir's buffers (no copy
/// into user space; haproxy's `option splice-response`). The session machine is told how many
/// bytes reached the client (`.upstreamBodySpliced`), so framing and keep-alive work as for
/// relayed bytes. Bytes already buffered go the normal way first.
extension ClientSession {
    /// Bodies shorter than this are relayed through the buffers (a pipe costs more than it saves).
    static let spliceThreshold = 64 * 1024
    /// The most bytes moved per readiness notification (fairness between sessions of a loop).
    static let spliceBudget = 4 << 20

    /// After a run of actions: starts splicing when the machine allows it and the upstream buffer
    /// is empty. The client's buffered output (the head) is written first.
    func considerSplice() {
        guard splicePipe == nil, let upstream, upstream.canSplice, client.canSplice, upstream.input.isEmpty,
              machine.spliceableResponseBytes >= Self.spliceThreshold, let pipe = worker.splicePipes.take() else { return }
        splicePipe = pipe
        upstream.readsDirectly = true
        if !client.output.isEmpty { client.notifyWhenWritable() }
    }

    /// Moves body bytes server → pipe → client while both sockets allow, within `spliceBudget`.
    func spliceStep() {
        var moved = 0
        while let pipe = splicePipe, let upstream, !machine.isClosed, moved < Self.spliceBudget {
            if !client.output.isEmpty { client.notifyWhenWritable(); break }
            if !pipe.isEmpty {
                switch client.splice(from: pipe) {
                case .moved(let n) where n > 0:
                    moved += n
                    delivered(n)
                    continue   // the machine may have ended the exchange (and the splice)
                case .moved:
                    client.notifyWhenWritable()   // the client's socket is full: wait for it
                    updateReading()
                    return
                case .failed:
                    handleSpliceFailure(.clientFailed(handshake: false))
                    return
                }
            }
            let wanted = machine.spliceableResponseBytes
            guard wanted > 0 else { stopSplicing(); break }   // the body is in; anything more is read as usual
            switch upstream.splice(into: pipe, max: wanted) {
            case .moved: continue
            case .wouldBlock: updateReading(); return
            case .ended: handleSpliceFailure(.upstreamEndOfStream); return
            case .failed(let error): handleSpliceFailure(.upstreamFailed("\(error)")); return
            }
        }
        // Past the budget with bytes left in the pipe, the server is not read (`updateReading`) and
        // the client's socket may have room: nothing would call again. Its writability does, in the
        // next loop pass (the stall this fixes: an 8 MiB body stopped after the first 4 MiB).
        if moved >= Self.spliceBudget, let pipe = splicePipe, !pipe.isEmpty { client.notifyWhenWritable() }
        updateReading()
    }

    /// Ends splicing (the body is complete, or the connections go): normal reads resume, the pipe
    /// goes back to the worker when empty (a pipe with bytes in it is closed with them).
    func stopSplicing() {
        guard let pipe = splicePipe else { return }
        splicePipe = nil
        upstream?.readsDirectly = false
        worker.splicePipes.give(pipe)
    }

    private func delivered(_ n: Int) {
        countBytesToClient(n)
        worker.stats.splicedBytes.wrappingIncrement(by: n, ordering: .relaxed)
        deliverEvent(.upstreamBodySpliced(n))
    }

    private func handleSpliceFailure(_ event: SessionEvent) {
        stopSplicing()
        deliverEvent(event)
    }
}

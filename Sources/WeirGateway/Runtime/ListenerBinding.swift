import Glibc
import WeirIO

/// Binds the listening sockets of listener slots, one per worker and slot (each worker accepts on
/// its own SO_REUSEPORT socket), before any worker takes them: a listener that cannot be bound
/// fails the start or the reload as a whole, and nothing bound for it stays open.
enum ListenerBinding {
    /// Per worker, its socket of each slot, in slot order. Throws the first bind error, naming the
    /// address, after closing every socket this call bound.
    static func bind(_ slots: [ListenerSlot], workers: Int, freebind: Bool) throws -> [[(ListenerSlot, Int32)]] {
        var bound = [[(ListenerSlot, Int32)]](repeating: [], count: workers)
        do {
            for slot in slots {
                var port = Int(slot.address.port)
                for w in 0..<workers {
                    // Binary upgrade: the sockets a previous process handed over for this address, if any (UpgradeChild.swift).
                    let inherited = UpgradeSockets.take(address: slot.address, worker: w)
                    if !inherited.isEmpty { bound[w] += inherited.map { (slot, $0) }; continue }
                    // A peer may listen on an address it holds only while it stands in for another peer.
                    let fd = try ListeningSocket.bind(host: slot.address.host, port: port, freebind: freebind)
                    bound[w].append((slot, fd))
                    // Port 0: every worker joins the port the kernel chose for the first.
                    if port == 0 { port = ListeningSocket.localPort(fd) }
                }
            }
        } catch {
            for list in bound { for (_, fd) in list { Glibc.close(fd) } }
            throw error
        }
        return bound
    }
}

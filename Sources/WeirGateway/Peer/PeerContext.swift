import WeirBalance

/// What the sessions of a peer process (`weir peer`) need beyond a gateway's: which servers are
/// other peers of the group, and the hop tokens that mark a request routed by a peer (so that the
/// receiving peer processes it locally: at most one hop). Immutable; shared by every worker.
public final class PeerContext: Sendable {
    /// Per server index of the routing snapshot: true for another peer of the group (a request
    /// sent there carries a hop token), false for the local application and any other server.
    public let isMemberServer: [Bool]
    private let makeToken: @Sendable (_ nowWallMs: Int64) -> String
    private let verifyToken: @Sendable (_ token: [UInt8], _ nowWallMs: Int64) -> Bool

    /// `makeToken` returns a fresh token of this peer (URL- and header-safe characters only);
    /// `verifyToken` says whether a token came from a member of the group and is current.
    public init(snapshot: RoutingSnapshot, memberIDs: Set<String>,
                makeToken: @escaping @Sendable (Int64) -> String,
                verifyToken: @escaping @Sendable ([UInt8], Int64) -> Bool) {
        isMemberServer = snapshot.servers.map { memberIDs.contains($0.config.id) && $0.index != snapshot.localServer }
        self.makeToken = makeToken
        self.verifyToken = verifyToken
    }

    /// The request header a forward to another peer carries (complete line with CRLF).
    func hopField(nowWallMs: Int64) -> [UInt8] {
        Array("Weir-Hop: \(makeToken(nowWallMs))\r\n".utf8)
    }

    /// The query parameter a redirect to another peer carries ("weir-hop=TOKEN").
    func hopParameter(nowWallMs: Int64) -> String {
        "\(HopMarker.parameterName)=\(makeToken(nowWallMs))"
    }

    /// Whether `token` is a valid hop token of a member, now.
    func verify(_ token: ArraySlice<UInt8>, nowWallMs: Int64) -> Bool {
        verifyToken(Array(token), nowWallMs)
    }
}

/// Where a hop token travels: the `Weir-Hop` request header (route_by = "proxy") or the
/// `weir-hop` query parameter of a redirect's Location (route_by = "redirect").
enum HopMarker {
    static let headerName = HopToken.headerName
    static let parameterName = HopToken.queryName

    /// Splits the `weir-hop` parameter off an origin-form target: the target without it (the
    /// application never sees it) and its value; nil when the target has no such parameter.
    static func takeParameter(from path: ArraySlice<UInt8>) -> (path: [UInt8], token: ArraySlice<UInt8>)? {
        guard let question = path.firstIndex(of: UInt8(ascii: "?")) else { return nil }
        let name = Array(parameterName.utf8) + [UInt8(ascii: "=")]
        var kept: [ArraySlice<UInt8>] = []
        var token: ArraySlice<UInt8>? = nil
        var start = question + 1
        while start <= path.endIndex {
            let end = path[start...].firstIndex(of: UInt8(ascii: "&")) ?? path.endIndex
            let parameter = path[start..<end]
            if token == nil, parameter.starts(with: name) {
                token = parameter.dropFirst(name.count)
            } else if !parameter.isEmpty {
                kept.append(parameter)
            }
            start = end + 1
        }
        guard let token else { return nil }
        var out = Array(path[..<question])
        if !kept.isEmpty {
            out.append(UInt8(ascii: "?"))
            for (i, parameter) in kept.enumerated() {
                if i > 0 { out.append(UInt8(ascii: "&")) }
                out += parameter
            }
        }
        return (out, token)
    }
}

// Peer mode: the pool `group` and the default route, built from `[peer]` and `[group]` after validation. A peer is
// the gateway with this synthesized configuration, so balancing, sticky rules and redirects work unchanged.

enum PeerSynthesis {
    /// `configuration` with the pool `group` appended (and the route `peer` when there is no route), when it has
    /// `[peer]`; unchanged otherwise.
    static func apply(to configuration: WeirConfiguration) -> WeirConfiguration {
        guard let peer = configuration.peer, let group = configuration.group else { return configuration }
        var configuration = configuration
        configuration.pools.append(pool(peer, group, listeners: configuration.listeners))
        if configuration.routes.isEmpty {
            configuration.routes.append(Route(name: PeerSettings.defaultRouteName, pathPrefix: "/",
                                              pool: PeerSettings.poolName))
        }
        return configuration
    }

    /// Threshold policy over the local app (the home) and every member with role "peer"; beacons judge the
    /// members (not probed), the local app is probed by `[peer.health]`.
    static func pool(_ peer: PeerSettings, _ group: GroupSettings, listeners: [Listener]) -> Pool {
        let local = Server(id: peer.id, address: peer.app, capacity: peer.capacity,
                           publicURL: peer.publicURL ?? listeners.first.map(url))
        let others = group.members.compactMap { member -> Server? in
            guard member.role == .peer, let address = member.address else { return nil }
            return Server(id: member.id, address: address, capacity: member.capacity,
                          publicURL: member.publicURL ?? "http://\(address)", probed: false)
        }
        // No slow start: it would make a peer coming back look busier than its beacons say, which
        // the figure 2 rule would read as load. One retry: a request whose peer failed before any
        // response byte goes to the local application or another peer.
        return Pool(name: PeerSettings.poolName, policy: .threshold, servers: [local] + others,
                    firstLevel: peer.firstLevel, secondLevel: peer.secondLevel, retries: 1, slowStart: .zero,
                    health: peer.health, loadSource: .beacons)
    }

    /// `http://<address>`, or `https://` for a TLS listener.
    static func url(_ listener: Listener) -> String {
        "\(listener.tls == nil ? "http" : "https")://\(listener.address)"
    }
}

import TOMLKit

// `[peer]` and `[group]` in the merge: each is written whole in one file (a [peer] table describes this host and
// has required keys, so it cannot be assembled from parts), and the checks that span files.

extension Merger {
    static let addGroup = #"add [group] with beacon = "\#(Schema.beaconExample)" and a [[group.member]] per "#

    mutating func processPeer(_ table: TOMLTable, at site: Site) {
        if let first = peerSite {
            fail(site.file, site.key, "[peer] is already set in \(first.file); write the whole [peer] table (with "
                 + "its [peer.health]) in one file")
            return
        }
        peerSite = site
        peer = reader.read(table, Schema.peer, at: site)
    }

    mutating func processGroup(_ table: TOMLTable, at site: Site) {
        if let first = groupSite {
            fail(site.file, site.key, "[group] is already set in \(first.file); write the whole [group] table (with "
                 + "its [[group.member]]s) in one file")
            return
        }
        groupSite = site
        group = reader.read(table, Schema.group, at: site)
    }

    /// Whether `pool` names the pool the loader synthesizes (a peer directory's `group`).
    func isSynthesizedPool(_ pool: String) -> Bool {
        peerSite != nil && pool == PeerSettings.poolName
    }

    /// The checks across files of `[peer]`, `[group]` and `load_source = "beacons"` (every file was read).
    mutating func checkPeerGroup() {
        if let peerSite {
            if groupSite == nil {
                fail(peerSite.file, peerSite.key, "[peer] needs a [group], the beacon group this peer belongs to; "
                     + Self.addGroup + "other host")
            }
            if let location = reader.declared["pool name"]?[PeerSettings.poolName] {
                let (file, key) = Self.split(location)
                fail(file, key, "pool name \"\(PeerSettings.poolName)\" is reserved in peer mode: the loader builds "
                     + "that pool from [peer] and [group]; rename this pool ([[route]]s may name pool \"group\" to "
                     + "reach the peers)")
            } else {
                // So that a route's misspelt pool name is matched against "group" too.
                _ = reader.declare(PeerSettings.poolName, kind: "pool name", at: peerSite)
            }
            if let peer { checkPeerIds(peer, at: peerSite) }
            if let group, group.settings.shareUsers, let shareSite = groupSite?.child("share_users") {
                fail(shareSite.file, shareSite.key, "share_users is for gateways (a peer's own beacons "
                     + "already carry what it does); remove it from this [group]")
            }
            if let group, group.settings.shareLoad, let shareSite = groupSite?.child("share_load") {
                fail(shareSite.file, shareSite.key, "share_load is for gateways (a peer's own beacons "
                     + "already carry its load); remove it from this [group]")
            }
        }
        for (site, pool) in beaconPools { checkBeaconPool(pool, at: site) }
    }

    /// Member ids differ from the peer id; in peer mode the ids of the pool `group` are not the ids of other servers.
    mutating func checkPeerIds(_ peer: PeerSettings, at peerSite: Site) {
        let peerIdSite = peerSite.child("id")
        checkNotAServerId(peer.id, what: "peer id", at: peerIdSite)
        guard let group else { return }
        for (member, site) in zip(group.settings.members, group.memberSites) {
            if member.id == peer.id {
                reader.fail(site.child("id"), "member id \"\(member.id)\" is this host's own [peer] id "
                            + "(\(peerIdSite.location)); list only the other hosts as [[group.member]]")
            } else if member.role == .peer {
                checkNotAServerId(member.id, what: "member id", at: site.child("id"))
            }
        }
    }

    mutating func checkNotAServerId(_ id: String, what: String, at site: Site) {
        guard let location = reader.declared["server id"]?[id] else { return }
        reader.fail(site, "\(what) \"\(id)\" is also the id of the server at \(location); the pool \"group\" has a "
                    + "server per peer, and server ids must be unique across all pools")
    }

    /// A `load_source = "beacons"` pool needs `[group]`, and each of its servers is a member with role "peer".
    mutating func checkBeaconPool(_ pool: Pool, at site: Site) {
        guard groupSite != nil else {
            reader.fail(site.child("load_source"), #"load_source = "beacons" needs a [group] (the beacons come from "#
                        + "its members); " + Self.addGroup + "server of this pool")
            return
        }
        guard let group else { return }
        let members = group.settings.members
        let peerIds = members.filter { $0.role == .peer }.map(\.id)
        let known = peerIds.isEmpty ? #"no [[group.member]] with role "peer" is defined"#
            : "member ids: \(ValueRules.quotedList(peerIds))"
        for (index, server) in pool.servers.enumerated() where !peerIds.contains(server.id) {
            let why = members.contains { $0.id == server.id }
                ? #"is a [[group.member]] with role "listener", whose beacons carry no load"#
                : "is not the id of a [[group.member]]"
            reader.fail(site.child("server").element(index).child("id"),
                        "server \"\(server.id)\" \(why); with load_source = \"beacons\" each server id must be the id "
                        + "of the member whose beacons carry its load; \(known)")
        }
    }
}

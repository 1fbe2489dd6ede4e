import TOMLKit

// `[peer]`, `[peer.health]`, `[group]` and `[[group.member]]` as data, like the tables in Schema.swift. The checks
// that need other files (a [peer] needs a [group], member ids against the peer id, `load_source = "beacons"`)
// are in Merger+Peer.swift.

/// `[group]` while it is read: whether `beacon` was valid (members' beacons are compared with it), the secret
/// keys, and the site of each valid member (in `settings.members` order).
struct GroupState: SecretState {
    var settings = GroupSettings(beacon: Schema.noAddress)
    var beaconValid = false
    var memberSites: [Site] = []
    var inlineSecret: String? = nil
    var inlineLocation: String? = nil
    var fileSecret: String? = nil
    var fileLocation: String? = nil
    var secretFilePath: String? {
        get { settings.secretFile }
        set { settings.secretFile = newValue }
    }

    /// The settings with the effective secret resolved.
    var resolved: GroupSettings {
        var settings = settings
        settings.secret = inlineSecret ?? fileSecret
        return settings
    }
}

extension Schema {
    static let appExample = "127.0.0.1:8000"
    static let beaconExample = "198.51.100.1:7946"
    static let memberAddressExample = "198.51.100.2:80"

    // MARK: [peer], [peer.health]

    static var peer: TableSpec<PeerSettings> {
        TableSpec(header: "[peer]", keys: [
            .key("id", .peerId("peer id"), \.id, missing: .required(#"id = "peer-a""#)),
            .key("app", .address(example: appExample, portRule: "the app's port must be between 1 and 65535"), \.app,
                 missing: .required("app = \"\(appExample)\"")),
            .key("capacity", .integer(PeerSettings.capacityRange), \.capacity),
            .key("route_by", .choice(kind: "route_by", plural: "values"), \.routeBy),
            .key("first_level", .level, \.firstLevel),
            .key("second_level", .level, \.secondLevel),
            .key("public_url", Rule.text("URL", form: ValueRules.urlForm, valid: ValueRules.isValidPublicURL).some,
                 \.publicURL),
            .key("serves", .servedPaths, \.serves),
            .key("addresses", .interfaceAddresses, \.addresses),
            .key("redirect_status", .oneOf(PeerSettings.redirectStatuses, "must be 307 or 308"), \.redirectStatus),
            section("health", peerHealth, expected: "a table ([peer.health])") { $0.health = $1.health },
        ], defaults: { PeerSettings(id: "", app: noAddress) },
        neighbours: { [peerHealth.asNeighbour, group.asNeighbour] })
    }

    static var peerHealth: TableSpec<HealthDraft> {
        healthSpec(header: "[peer.health]", neighbours: { [peer.asNeighbour] })
    }

    // MARK: [group], [[group.member]]

    static var group: TableSpec<GroupState> {
        TableSpec(header: "[group]", keys: [
            KeySpec("beacon", missing: .required("beacon = \"\(beaconExample)\"")) { value, site, reader, state in
                let rule = Rule.address(example: beaconExample, portRule: "a beacon port must be between 1 and 65535")
                guard let address = rule.check(value, site, &reader) else { return false }
                state.settings.beacon = address
                state.beaconValid = true
                return true
            },
            .key("interval", .duration(within: GroupSettings.intervalRange), \.settings.interval),
            .key("dead_after", .integer(2...100), \.settings.deadAfter),
            .key("rise", .integer(1...100), \.settings.rise),
            secretKey(), secretFileKey(example: "/etc/weir/group.secret"),
            .key("share_users", .boolean, \.settings.shareUsers),
            .key("share_load", .boolean, \.settings.shareLoad),
            .key("id", Rule.peerId("gateway id").some, \.settings.id),
            KeySpec("member") { value, site, reader, state in
                guard let (members, valid) = reader.readArray(value, groupMember, at: site) else { return false }
                // Beacon address -> the key that first named it.
                var beacons: [SocketAddress: String] = [:]
                var unique = true
                for (memberSite, member) in members {
                    let beaconSite = memberSite.child("beacon")
                    if state.beaconValid, member.beacon == state.settings.beacon {
                        unique = false
                        reader.fail(beaconSite, "beacon \(member.beacon) is this host's own beacon (\(site.parent.child("beacon").key)); "
                                    + "give each member the address its own beacons are received on")
                    } else if let first = beacons[member.beacon] {
                        unique = false
                        reader.fail(beaconSite, "beacon \(member.beacon) is already used by \(first); each member "
                                    + "receives its beacons on an address of its own")
                    } else {
                        beacons[member.beacon] = beaconSite.key
                    }
                    state.settings.members.append(member)
                    state.memberSites.append(memberSite)
                }
                return valid && unique
            },
        ], defaults: { GroupState() }, neighbours: { [groupMember.asNeighbour, peer.asNeighbour] },
        check: { _, site, reader, state in
            if state.settings.shareUsers, state.settings.id == nil {
                reader.fail(site.child("share_users"), #"share_users = true needs this gateway's id in the beacons it sends, e.g. id = "gw-a" "#
                            + #"(the other gateways list it as a [[group.member]] with role "listener")"#)
                return false
            }
            if state.settings.shareLoad, state.settings.id == nil {
                reader.fail(site.child("share_load"), #"share_load = true needs this gateway's id in the beacons it sends, e.g. id = "gw-a" "#
                            + #"(the other gateways list it as a [[group.member]] with role "listener")"#)
                return false
            }
            if let id = state.settings.id, state.settings.members.contains(where: { $0.id == id }) {
                reader.fail(site.child("id"), "id \"\(id)\" is also the id of a [[group.member]]; list only the other hosts as members")
                return false
            }
            guard let inline = state.inlineLocation, let fileKey = state.fileLocation else { return true }
            reader.fail(Merger.split(fileKey).file, Merger.split(fileKey).key,
                        "secret and secret_file are both set (secret at \(inline)); set only one of them")
            return false
        })
    }

    static var groupMember: TableSpec<GroupMember> {
        let forPeer = #"for role "peer" (its public HTTP address, where requests are proxied to), e.g. "#
        return TableSpec(header: "[[group.member]]", keys: [
            KeySpec("id", missing: .required(#"id = "peer-b""#)) { value, site, reader, member in
                guard let id = Rule.peerId("member id").check(value, site, &reader) else { return false }
                member.id = id
                return reader.declare(id, kind: "member id", at: site)
            },
            .key("beacon", .address(example: beaconExample, portRule: "a beacon port must be between 1 and 65535"),
                 \.beacon, missing: .required("beacon = \"198.51.100.2:7946\"")),
            .key("role", .choice(kind: "role", plural: "roles"), \.role),
            .key("address", Rule.address(example: memberAddressExample, allowPortZero: false).some, \.address,
                 missing: Missing { table, _ in
                     // An invalid role has its own error; only a role that is (or defaults to) "peer" needs it.
                     (table["role"].map { $0.string == MemberRole.peer.rawValue } ?? true)
                         ? "missing required key \(forPeer)address = \"\(memberAddressExample)\"" : nil
                 }),
            .key("public_url", Rule.text("URL", form: ValueRules.urlForm, valid: ValueRules.isValidPublicURL).some,
                 \.publicURL),
            .key("capacity", .integer(PeerSettings.capacityRange), \.capacity),
            .key("takeover", .interfaceAddresses, \.takeover),
        ], defaults: { GroupMember(id: "", beacon: noAddress) }, neighbours: { [group.asNeighbour, peer.asNeighbour] },
        check: { table, site, reader, member in
            guard member.role == .listener, table["role"] != nil else { return true }
            var valid = true
            for key in ["address", "public_url", "takeover"] where table[key] != nil {
                valid = false
                reader.fail(site.child(key), #"must not be set for role "listener" (a listener takes no requests "#
                            + #"and holds no addresses); remove it, or make the member role = "peer""#)
            }
            return valid
        })
    }
}

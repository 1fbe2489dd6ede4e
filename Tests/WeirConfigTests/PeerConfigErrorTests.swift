import Foundation
import Testing
@testable import WeirConfig

/// Every error of `[peer]`, `[group]`, `[[group.member]]` and `load_source`, with its exact text.
@Suite struct PeerConfigErrorTests {
    /// Errors of `a.toml` = the peer directory with `peerKeys` added to `[peer]`, `groupKeys` to `[group]`, and
    /// `extra` appended (after the last `[[group.member]]`).
    func errors(peer peerKeys: String = "", group groupKeys: String = "", _ extra: String = "") -> [String] {
        let text = peerTOML
            .replacingOccurrences(of: "[peer]\n", with: "[peer]\n\(peerKeys)\n")
            .replacingOccurrences(of: "[group]\n", with: "[group]\n\(groupKeys)\n")
        return errorLines([("a.toml", text + extra)])
    }

    /// Errors with a third `[[group.member]]` holding `keys`.
    func memberErrors(_ keys: String) -> [String] {
        errors("[[group.member]]\n\(keys)\n")
    }

    static let interfaceForm =
        #"expected "ADDRESS/PREFIX dev DEVICE" such as "198.51.100.1/24 dev eth0" or "2001:db8::1/64 dev eth0""#

    // MARK: Across files

    @Test func peerNeedsAGroup() {
        let withoutGroup = String(peerTOML[..<peerTOML.range(of: "[group]")!.lowerBound])
        #expect(errorLines([("a.toml", withoutGroup)]) == [
            #"a.toml: peer: [peer] needs a [group], the beacon group this peer belongs to; add [group] with beacon = "198.51.100.1:7946" and a [[group.member]] per other host"#,
        ])
    }

    @Test func peerAndGroupAreEachWrittenInOneFile() {
        #expect(errorLines([("a.toml", peerTOML), ("b.toml", "[peer.health]\ntype = \"http\"\n")]) == [
            "b.toml: peer: [peer] is already set in a.toml; write the whole [peer] table (with its [peer.health]) in one file",
        ])
        #expect(errorLines([("a.toml", peerTOML), ("b.toml", "[[group.member]]\nid = \"peer-d\"\nbeacon = \"198.51.100.4:7946\"\naddress = \"198.51.100.4:80\"\n")]) == [
            "b.toml: group: [group] is already set in a.toml; write the whole [group] table (with its [[group.member]]s) in one file",
        ])
        #expect(errorLines([("a.toml", peerTOML), ("b.toml", "[[peer]]\nid = \"x\"\n")]) == [
            "b.toml: peer: expected a table ([peer]), found an array",
        ])
    }

    @Test func memberIds() {
        #expect(memberErrors("id = \"peer-b\"\nbeacon = \"198.51.100.4:7946\"\naddress = \"198.51.100.4:80\"") == [
            #"a.toml: group.member[2].id: duplicate member id "peer-b"; already defined at a.toml: group.member[0].id"#,
        ])
        #expect(memberErrors("id = \"peer-a\"\nbeacon = \"198.51.100.4:7946\"\naddress = \"198.51.100.4:80\"") == [
            #"a.toml: group.member[2].id: member id "peer-a" is this host's own [peer] id (a.toml: peer.id); list only the other hosts as [[group.member]]"#,
        ])
    }

    @Test func memberBeacons() {
        #expect(memberErrors("id = \"peer-d\"\nbeacon = \"198.51.100.2:7946\"\naddress = \"198.51.100.4:80\"") == [
            "a.toml: group.member[2].beacon: beacon 198.51.100.2:7946 is already used by group.member[0].beacon; each member receives its beacons on an address of its own",
        ])
        #expect(memberErrors("id = \"peer-d\"\nbeacon = \"198.51.100.1:7946\"\naddress = \"198.51.100.4:80\"") == [
            "a.toml: group.member[2].beacon: beacon 198.51.100.1:7946 is this host's own beacon (group.beacon); give each member the address its own beacons are received on",
        ])
    }

    @Test func roles() {
        #expect(memberErrors("id = \"peer-d\"\nbeacon = \"198.51.100.4:7946\"") == [
            #"a.toml: group.member[2].address: missing required key for role "peer" (its public HTTP address, where requests are proxied to), e.g. address = "198.51.100.2:80""#,
        ])
        #expect(memberErrors("id = \"peer-d\"\nbeacon = \"198.51.100.4:7946\"\nrole = \"peer\"") == [
            #"a.toml: group.member[2].address: missing required key for role "peer" (its public HTTP address, where requests are proxied to), e.g. address = "198.51.100.2:80""#,
        ])
        let refused = #"must not be set for role "listener" (a listener takes no requests and holds no addresses); remove it, or make the member role = "peer""#
        #expect(memberErrors("""
            id = "gw"
            beacon = "198.51.100.9:7946"
            role = "listener"
            address = "198.51.100.9:80"
            public_url = "http://198.51.100.9"
            takeover = ["198.51.100.19/24 dev eth0"]
            """) == [
            "a.toml: group.member[2].address: \(refused)",
            "a.toml: group.member[2].public_url: \(refused)",
            "a.toml: group.member[2].takeover: \(refused)",
        ])
        // An unknown role has its own error only.
        #expect(memberErrors("id = \"gw\"\nbeacon = \"198.51.100.9:7946\"\nrole = \"gateway\"") == [
            #"a.toml: group.member[2].role: unknown role "gateway"; supported roles: "peer", "listener""#,
        ])
    }

    @Test func thePoolGroupIsReservedInPeerMode() {
        #expect(errors("[[pool]]\nname = \"group\"\n[[pool.server]]\nid = \"x\"\naddress = \"127.0.0.1:9001\"\n") == [
            #"a.toml: pool[0].name: pool name "group" is reserved in peer mode: the loader builds that pool from [peer] and [group]; rename this pool ([[route]]s may name pool "group" to reach the peers)"#,
        ])
    }

    @Test func aRouteToAMisspeltPoolGroup() {
        #expect(errors("[[route]]\nname = \"r\"\npool = \"grop\"\n") == [
            #"a.toml: route[0].pool: no pool named "grop" (did you mean "group"?)"#,
        ])
    }

    @Test func peerAndMemberIdsAreNotOtherServerIds() {
        #expect(errors("""
            [[pool]]
            name = "static"
            [[pool.server]]
            id = "peer-a"
            address = "127.0.0.1:9001"
            [[pool.server]]
            id = "peer-c"
            address = "127.0.0.1:9002"
            """) == [
            #"a.toml: peer.id: peer id "peer-a" is also the id of the server at a.toml: pool[0].server[0].id; the pool "group" has a server per peer, and server ids must be unique across all pools"#,
            #"a.toml: group.member[1].id: member id "peer-c" is also the id of the server at a.toml: pool[0].server[1].id; the pool "group" has a server per peer, and server ids must be unique across all pools"#,
        ])
    }

    @Test func aPeerDirectoryStillNeedsAListener() {
        let withoutListener = String(peerTOML[peerTOML.range(of: "[peer]")!.lowerBound...])
        #expect(errorLines([("a.toml", withoutListener)]) == [
            #"(configuration): listener: no listener defined; add a [[listener]] with a name and an address, e.g. name = "public" and address = "127.0.0.1:8080""#,
        ])
    }

    // MARK: load_source

    @Test func loadSourceBeaconsNeedsAGroup() {
        let text = baseTOML.replacingOccurrences(of: "name = \"demo\"\n", with: "name = \"demo\"\nload_source = \"beacons\"\n")
        #expect(errorLines([("a.toml", text)]) == [
            #"a.toml: pool[0].load_source: load_source = "beacons" needs a [group] (the beacons come from its members); add [group] with beacon = "198.51.100.1:7946" and a [[group.member]] per server of this pool"#,
        ])
        let typo = baseTOML.replacingOccurrences(of: "name = \"demo\"\n", with: "name = \"demo\"\nload_source = \"beacon\"\n")
        #expect(errorLines([("a.toml", typo)]) == [
            #"a.toml: pool[0].load_source: unknown load source "beacon" (did you mean "beacons"?); supported load sources: "probes", "beacons""#,
        ])
    }

    @Test func beaconServersMustBeMembers() {
        let gateway = """
            [[listener]]
            name = "public"
            address = "127.0.0.1:8080"
            [[pool]]
            name = "peers"
            load_source = "beacons"
            [[pool.server]]
            id = "peer-a"
            address = "198.51.100.1:80"
            [[pool.server]]
            id = "demo-1"
            address = "127.0.0.1:9001"
            [[pool.server]]
            id = "gw2"
            address = "127.0.0.1:9002"
            [[route]]
            name = "default"
            pool = "peers"
            [group]
            beacon = "198.51.100.9:7946"
            [[group.member]]
            id = "peer-a"
            beacon = "198.51.100.1:7946"
            address = "198.51.100.1:80"
            [[group.member]]
            id = "peer-b"
            beacon = "198.51.100.2:7946"
            address = "198.51.100.2:80"
            [[group.member]]
            id = "gw2"
            beacon = "198.51.100.8:7946"
            role = "listener"
            """
        let rule = #"with load_source = "beacons" each server id must be the id of the member whose beacons carry its load"#
        #expect(errorLines([("a.toml", gateway)]) == [
            #"a.toml: pool[0].server[1].id: server "demo-1" is not the id of a [[group.member]]; \#(rule); member ids: "peer-a", "peer-b""#,
            #"a.toml: pool[0].server[2].id: server "gw2" is a [[group.member]] with role "listener", whose beacons carry no load; \#(rule); member ids: "peer-a", "peer-b""#,
        ])
        let noPeers = String(gateway[..<gateway.range(of: "[[group.member]]")!.lowerBound])
        #expect(errorLines([("a.toml", noPeers)]) == [
            #"a.toml: pool[0].server[0].id: server "peer-a" is not the id of a [[group.member]]; \#(rule); no [[group.member]] with role "peer" is defined"#,
            #"a.toml: pool[0].server[1].id: server "demo-1" is not the id of a [[group.member]]; \#(rule); no [[group.member]] with role "peer" is defined"#,
            #"a.toml: pool[0].server[2].id: server "gw2" is not the id of a [[group.member]]; \#(rule); no [[group.member]] with role "peer" is defined"#,
        ])
    }

    // MARK: [peer] values

    @Test func requiredKeys() {
        #expect(errorLines([("a.toml", peerTOML.replacingOccurrences(of: "id = \"peer-a\"\napp = \"127.0.0.1:8000\"\n", with: ""))]) == [
            #"a.toml: peer.id: missing required key, e.g. id = "peer-a""#,
            #"a.toml: peer.app: missing required key, e.g. app = "127.0.0.1:8000""#,
        ])
        #expect(errorLines([("a.toml", peerTOML.replacingOccurrences(of: "beacon = \"198.51.100.1:7946\"\n", with: ""))]) == [
            #"a.toml: group.beacon: missing required key, e.g. beacon = "198.51.100.1:7946""#,
        ])
        #expect(memberErrors("address = \"198.51.100.4:80\"") == [
            #"a.toml: group.member[2].id: missing required key, e.g. id = "peer-b""#,
            #"a.toml: group.member[2].beacon: missing required key, e.g. beacon = "198.51.100.2:7946""#,
        ])
    }

    @Test func ids() {
        let form = #"expected 1 to 64 letters, digits, ".", "_" or "-", such as "peer-a""#
        let long = String(repeating: "a", count: 65)
        for id in ["peer a", "", "b/1", "pëer", long] {
            #expect(errorLines([("a.toml", peerTOML.replacingOccurrences(of: "id = \"peer-a\"", with: "id = \"\(id)\""))]) == [
                #"a.toml: peer.id: invalid peer id "\#(ValueRules.clip(id))"; \#(form)"#,
            ])
        }
        #expect(memberErrors("id = \"b/1\"\nbeacon = \"198.51.100.4:7946\"\naddress = \"198.51.100.4:80\"") == [
            #"a.toml: group.member[2].id: invalid member id "b/1"; \#(form)"#,
        ])
        #expect(errors(peer: "").isEmpty)
    }

    @Test func addresses() {
        #expect(errorLines([("a.toml", peerTOML.replacingOccurrences(of: "127.0.0.1:8000", with: "127.0.0.1:0"))]) == [
            #"a.toml: peer.app: invalid address "127.0.0.1:0": the app's port must be between 1 and 65535; expected a numeric IP address and port such as "127.0.0.1:8000" or "[::1]:8000""#,
        ])
        #expect(errorLines([("a.toml", peerTOML.replacingOccurrences(of: "127.0.0.1:8000", with: "localhost:8000"))]) == [
            #"a.toml: peer.app: invalid address "localhost:8000": "localhost" is a host name, not a numeric IP address (host names are not resolved); expected a numeric IP address and port such as "127.0.0.1:8000" or "[::1]:8000""#,
        ])
        #expect(errorLines([("a.toml", peerTOML.replacingOccurrences(of: "198.51.100.1:7946", with: "198.51.100.1:0"))]) == [
            #"a.toml: group.beacon: invalid address "198.51.100.1:0": a beacon port must be between 1 and 65535; expected a numeric IP address and port such as "198.51.100.1:7946" or "[::1]:7946""#,
        ])
        #expect(memberErrors("id = \"peer-d\"\nbeacon = \"198.51.100.4:0\"\naddress = \"198.51.100.4:0\"") == [
            #"a.toml: group.member[2].beacon: invalid address "198.51.100.4:0": a beacon port must be between 1 and 65535; expected a numeric IP address and port such as "198.51.100.1:7946" or "[::1]:7946""#,
            #"a.toml: group.member[2].address: invalid address "198.51.100.4:0": a server port must be between 1 and 65535; expected a numeric IP address and port such as "198.51.100.2:80" or "[::1]:80""#,
        ])
    }

    @Test func interfaceAddresses() {
        let form = Self.interfaceForm
        #expect(errors(peer: """
            addresses = ["198.51.100.1/24", "host/24 dev eth0", "198.51.100.1 dev eth0", "198.51.100.1/33 dev eth0", "2001:db8::1/129 dev eth0", "198.51.100.1/24 dev abcdefghijklmnop", 7, "198.51.100.1/24 dev eth0"]
            """) == [
            #"a.toml: peer.addresses[0]: invalid interface address "198.51.100.1/24"; \#(form)"#,
            #"a.toml: peer.addresses[1]: invalid interface address "host/24 dev eth0": "host" is not a numeric IPv4 or IPv6 address; \#(form)"#,
            #"a.toml: peer.addresses[2]: invalid interface address "198.51.100.1 dev eth0": the prefix length is missing; \#(form)"#,
            #"a.toml: peer.addresses[3]: invalid interface address "198.51.100.1/33 dev eth0": the prefix length must be between 0 and 32 for IPv4, found "33"; \#(form)"#,
            #"a.toml: peer.addresses[4]: invalid interface address "2001:db8::1/129 dev eth0": the prefix length must be between 0 and 128 for IPv6, found "129"; \#(form)"#,
            #"a.toml: peer.addresses[5]: invalid interface address "198.51.100.1/24 dev abcdefghijklmnop": "abcdefghijklmnop" is not a device name (1 to 15 letters, digits, ".", "_", "-" or "@"); \#(form)"#,
            "a.toml: peer.addresses[6]: \(form), found an integer (7)",
        ])
        #expect(errors(peer: #"addresses = "198.51.100.1/24 dev eth0""#) == [
            #"a.toml: peer.addresses: expected an array of addresses such as ["198.51.100.1/24 dev eth0"], found a string ("198.51.100.1/24 dev eth0")"#,
        ])
        #expect(errors(#"takeover = ["198.51.100.11/24 on eth0"]"#) == [
            #"a.toml: group.member[1].takeover[0]: invalid interface address "198.51.100.11/24 on eth0"; \#(form)"#,
        ])
    }

    @Test func servedPaths() {
        let form = ##"expected a path prefix starting with "/" (no spaces, "?" or "#") such as "/api/", optionally ending in "*" such as "/banking/*" (no other "*")"##
        #expect(errors(peer: #"serves = ["/api", "api/", "/a/*/b", "/x*", "/q?", 3]"#) == [
            #"a.toml: peer.serves[1]: invalid path "api/"; \#(form)"#,
            #"a.toml: peer.serves[2]: invalid path "/a/*/b"; \#(form)"#,
            #"a.toml: peer.serves[4]: invalid path "/q?"; \#(form)"#,
            "a.toml: peer.serves[5]: \(form), found an integer (3)",
        ])
        #expect(errors(peer: #"serves = "/api/""#) == [
            #"a.toml: peer.serves: expected an array of paths such as ["/api/", "/banking/*"], found a string ("/api/")"#,
        ])
    }

    @Test func choicesAndRanges() {
        #expect(errors(peer: #"route_by = "redirects""#) == [
            #"a.toml: peer.route_by: unknown route_by "redirects" (did you mean "redirect"?); supported values: "proxy", "redirect""#,
        ])
        #expect(errors(peer: "redirect_status = 302") == [
            "a.toml: peer.redirect_status: must be 307 or 308, found 302",
        ])
        #expect(errors(peer: "capacity = 0") == ["a.toml: peer.capacity: must be between 1 and 1000000, found 0"])
        #expect(errors(peer: "first_level = 2") == [
            #"a.toml: peer.first_level: must be between 0.0 and 1.0 (or "0%" and "100%"), found 2"#,
        ])
        #expect(errors(peer: #"public_url = "ftp://a""#) == [
            #"a.toml: peer.public_url: invalid URL "ftp://a"; expected an http:// or https:// URL with no path beyond "/", such as "http://127.0.0.1:9001""#,
        ])
        #expect(errors(group: #"interval = "10ms""#) == [#"a.toml: group.interval: must be between 50ms and 1m, found "10ms""#])
        #expect(errors(group: #"interval = "61s""#) == [#"a.toml: group.interval: must be between 50ms and 1m, found "61s""#])
        #expect(errors(group: #"interval = "0s""#) == [
            #"a.toml: group.interval: expected a duration such as "10s" or "250ms" (a positive whole number followed by ms, s, m or h), found "0s""#,
        ])
        #expect(errors(group: "dead_after = 1") == ["a.toml: group.dead_after: must be between 2 and 100, found 1"])
        #expect(errors(group: "rise = 0") == ["a.toml: group.rise: must be between 1 and 100, found 0"])
        #expect(errors("capacity = 1000001") == ["a.toml: group.member[1].capacity: must be between 1 and 1000000, found 1000001"])
    }

    // MARK: [group] secret

    @Test func groupSecret() {
        #expect(errors(group: #"secret = "short""#) == [
            "a.toml: group.secret: must be at least 32 characters, found 5; generate one with: openssl rand -hex 32 (or leave secret out: one is then generated at first start and kept in [global] state_dir)",
        ])
        #expect(errors(group: #"secret_file = """#) == [
            #"a.toml: group.secret_file: must not be empty, e.g. secret_file = "/etc/weir/group.secret""#,
        ])
        let secret = String(repeating: "k", count: 32)
        #expect(errors(group: "secret = \"\(secret)\"\nsecret_file = \"/nonexistent/group.secret\"") == [
            "a.toml: group.secret_file: cannot read secret file \"/nonexistent/group.secret\": it does not exist; create it with: openssl rand -hex 32 > /nonexistent/group.secret",
            "a.toml: group.secret_file: secret and secret_file are both set (secret at a.toml: group.secret); set only one of them",
        ])
    }

    // MARK: Unknown keys

    @Test func unknownKeys() {
        #expect(errors(peer: #"colour = "1""#) == [
            "a.toml: peer.colour: unknown key; known keys in [peer]: id, app, capacity, route_by, first_level, second_level, public_url, serves, addresses, redirect_status, health",
        ])
        #expect(errors(peer: #"beacon = "198.51.100.1:7946""#) == [
            "a.toml: peer.beacon: unknown key; beacon belongs in [group], not [peer]",
        ])
        #expect(errors(group: #"takeover = []"#) == [
            "a.toml: group.takeover: unknown key; takeover belongs in [[group.member]], not [group]",
        ])
        #expect(errors("[peer.health]\nscheme = \"http\"\n") == [
            "a.toml: peer.health.scheme: unknown key; known keys in [peer.health]: type, interval, timeout, rise, fall, method, path, host, expect_status, expect_body",
        ])
        #expect(errors("[peer.health]\ntimeout = \"5s\"\n") == [
            #"a.toml: peer.health.timeout: must be shorter than peer.health.interval (default "2s"), found "5s""#,
        ])
        #expect(errors(peer: "health = 1") == [
            "a.toml: peer.health: expected a table ([peer.health]), found an integer (1)",
        ])
    }
}

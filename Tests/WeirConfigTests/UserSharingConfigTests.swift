import Testing
@testable import WeirConfig

/// `[sticky] unconfirmed_timeout / unconfirmed_table_size` and `[group] share_users / id` (issue 11,
/// the register of users).
@Suite struct UserSharingConfigTests {
    static let group = """
        [group]
        beacon = "127.0.0.1:7946"
        secret = "0123456789abcdef0123456789abcdef"
        share_users = true
        id = "gw-a"
        [[group.member]]
        id = "gw-b"
        beacon = "127.0.0.1:7947"
        role = "listener"

        """

    @Test func defaultsAndValues() throws {
        let plain = try parse([("a.toml", baseTOML)])
        #expect(plain.sticky.unconfirmedTimeout == .seconds(30) && plain.sticky.unconfirmedTableSize == 10_000)
        let config = try parse([("a.toml", baseTOML + "[sticky]\nunconfirmed_timeout = \"5s\"\nunconfirmed_table_size = 7\n" + Self.group)])
        #expect(config.sticky.unconfirmedTimeout == .seconds(5) && config.sticky.unconfirmedTableSize == 7)
        let group = try #require(config.group)
        #expect(group.shareUsers && group.id == "gw-a")
        #expect(try #require(parse([("a.toml", baseTOML + Self.group.replacingOccurrences(of: "share_users = true\n", with: ""))]).group).shareUsers == false)
    }

    @Test func errors() {
        #expect(errorLines([("a.toml", baseTOML + "[sticky]\nunconfirmed_timeout = \"2h\"\n")]).first?.contains("must be between 1s and 1h") == true)
        #expect(errorLines([("a.toml", baseTOML + "[sticky]\nunconfirmed_table_size = 0\n")]).count == 1)
        let noID = errorLines([("a.toml", baseTOML + Self.group.replacingOccurrences(of: "id = \"gw-a\"\n", with: ""))])
        #expect(noID.count == 1 && noID[0].contains("share_users = true needs this gateway's id"), "\(noID)")
        let memberID = errorLines([("a.toml", baseTOML + Self.group.replacingOccurrences(of: "id = \"gw-a\"", with: "id = \"gw-b\""))])
        #expect(memberID.count == 1 && memberID[0].contains("is also the id of a [[group.member]]"), "\(memberID)")
        let onAPeer = errorLines([("a.toml", peerTOML.replacingOccurrences(of: "[group]\n", with: "[group]\nshare_users = true\nid = \"gw-x\"\n"))])
        #expect(onAPeer.count == 1 && onAPeer[0].contains("share_users is for gateways"), "\(onAPeer)")
    }
}

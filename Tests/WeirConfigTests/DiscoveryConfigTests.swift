import Testing
@testable import WeirConfig

/// `[discovery]` keys of re-assignment (source document 004): alive_path, failed_exclusion, failed_clients.
@Suite struct DiscoveryConfigTests {
    @Test func defaultsAndWrittenValues() throws {
        let defaults = try parse([("a.toml", baseTOML)]).discovery
        #expect(defaults.alivePath == "/.well-known/weir/alive")
        #expect(defaults.failedExclusion == .seconds(60) && defaults.failedClients == 10_000)
        let config = try parse([("a.toml", baseTOML + "[discovery]\nalive_path = \"/up\"\nfailed_exclusion = \"30s\"\nfailed_clients = 50\n")])
        #expect(config.discovery == DiscoverySettings(alivePath: "/up", failedExclusion: .seconds(30), failedClients: 50))
        #expect(try parse([("a.toml", baseTOML + "[discovery]\nalive_path = \"off\"\n")]).discovery.alivePath == nil)
    }

    @Test func badValuesAreReported() {
        #expect(errorLines(appending: "[discovery]\nalive_path = \"alive\"\n") == [
            ##"a.toml: discovery.alive_path: invalid path "alive"; expected a path starting with "/" (no spaces, "?", "#" or "*") such as "/.well-known/weir/alive", or "off" to turn the endpoint off"##,
        ])
        #expect(errorLines(appending: "[discovery]\nfailed_clients = 0\n").count == 1)
        #expect(errorLines(appending: "[discovery]\nfailed_exclusion = \"0s\"\n").count == 1)
    }

    @Test func theAlivePathMustDifferFromTheOthers() {
        #expect(errorLines(appending: "[discovery]\nalive_path = \"/.well-known/weir/servers\"\n") == [
            #"a.toml: discovery.alive_path: must differ from discovery.servers_path (default "/.well-known/weir/servers"); each endpoint needs a path of its own"#,
        ])
        #expect(errorLines(appending: "[discovery]\nassign_path = \"/w\"\nalive_path = \"/w\"\n") == [
            #"a.toml: discovery.alive_path: must differ from discovery.assign_path ("/w"); each endpoint needs a path of its own"#,
        ])
        // Only the other key written: reported there, naming alive_path's default.
        #expect(errorLines(appending: "[discovery]\nassign_path = \"/.well-known/weir/alive\"\n") == [
            #"a.toml: discovery.assign_path: must differ from discovery.alive_path (default "/.well-known/weir/alive"); each endpoint needs a path of its own"#,
        ])
    }
}

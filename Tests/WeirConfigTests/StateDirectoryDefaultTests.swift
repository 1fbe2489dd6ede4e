import Testing
@testable import WeirConfig

/// The built-in state_dir never depends on the working directory: systemd's $STATE_DIRECTORY, else /var/lib/weir.
@Suite struct StateDirectoryDefaultTests {
    @Test func followsSystemdsStateDirectory() {
        #expect(GlobalSettings.stateDirectory(environment: ["STATE_DIRECTORY": "/var/lib/weir"]) == "/var/lib/weir")
        #expect(GlobalSettings.stateDirectory(environment: ["STATE_DIRECTORY": "/srv/state:/srv/other"]) == "/srv/state")
    }

    @Test func fallsBackWithoutAnAbsoluteOne() {
        #expect(GlobalSettings.stateDirectory(environment: [:]) == "/var/lib/weir")
        #expect(GlobalSettings.stateDirectory(environment: ["STATE_DIRECTORY": ""]) == "/var/lib/weir")
        #expect(GlobalSettings.stateDirectory(environment: ["STATE_DIRECTORY": "relative/dir"]) == "/var/lib/weir")
    }
}

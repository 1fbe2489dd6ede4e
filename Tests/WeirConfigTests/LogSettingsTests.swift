import Testing
@testable import WeirConfig

/// `[global] access_log_format`, `log_level` and `log_format`: defaults, values, exact errors.
@Suite struct LogSettingsTests {
    @Test func defaultsAreTheWeirLineInfoAndAuto() throws {
        let config = try parse([("a.toml", baseTOML)])
        #expect(config.global.accessLogFormat == .weir && config.global.logLevel == .info && config.global.logFormat == .auto)
    }

    @Test func everyValueIsRead() throws {
        let config = try parse([("a.toml", baseTOML + """
            [global]
            access_log_format = "json"
            log_level = "warning"
            log_format = "journal"

            """)])
        #expect(config.global.accessLogFormat == .json && config.global.logLevel == .warning && config.global.logFormat == .journal)
        for name in ["debug", "info", "notice", "warning", "error"] {
            #expect(try parse([("a.toml", baseTOML + "[global]\nlog_level = \"\(name)\"\n")]).global.logLevel.name == name)
        }
    }

    @Test func badValuesNameTheKeyAndTheChoices() {
        #expect(errorLines(appending: "[global]\naccess_log_format = \"jsn\"\n") == [
            #"a.toml: global.access_log_format: unknown access log format "jsn" (did you mean "json"?); supported formats: "weir", "combined", "json""#,
        ])
        #expect(errorLines(appending: "[global]\nlog_level = \"warn\"\n") == [
            #"a.toml: global.log_level: unknown log level "warn" (did you mean "warning"?); supported levels: "debug", "info", "notice", "warning", "error""#,
        ])
        #expect(errorLines(appending: "[global]\nlog_format = 3\n").first?.hasPrefix("a.toml: global.log_format: expected a string") == true)
    }

    @Test func levelsAreOrderedBySeverityAndTaggedWithSyslogPriorities() {
        #expect(LogLevel.error < .warning && LogLevel.warning < .notice && LogLevel.info < .debug)
        #expect(LogLevel.allCases.map(\.tag) == ["<3>", "<4>", "<5>", "<6>", "<7>"])
    }

    @Test func aReloadSaysTheyWaitForARestart() throws {
        let old = try parse([("a.toml", baseTOML)])
        var new = old
        new.global.logLevel = .debug
        #expect(ConfigurationChanges(from: old, to: new).needRestart.first?.hasPrefix("[global] log_level") == true)
    }
}

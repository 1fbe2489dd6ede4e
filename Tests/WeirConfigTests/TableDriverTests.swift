import Testing
import TOMLKit
@testable import WeirConfig

/// One table spec with its target type erased, so every table can be walked by the same test. Unchecked
/// Sendable: it holds only immutable specs whose closures capture no mutable state.
struct AnySpec: @unchecked Sendable, CustomTestStringConvertible {
    let header: String
    let names: [String]
    let neighbours: [Neighbour]
    /// Reads the table (at site `t.toml: x`) with a fresh reader and returns its errors.
    let errors: (TOMLTable) -> [ConfigError]

    init<Target>(_ spec: TableSpec<Target>) {
        header = spec.header
        names = spec.names
        neighbours = spec.neighbours()
        errors = { table in
            var reader = Reader()
            var target = spec.defaults()
            _ = reader.read(table, spec, at: Site(file: "t.toml", key: "x"), into: &target)
            return reader.errors
        }
    }

    var testDescription: String { header }
}

let everyTable: [AnySpec] = [
    AnySpec(Schema.global), AnySpec(Schema.timeouts), AnySpec(Schema.limits), AnySpec(Schema.admin),
    AnySpec(Schema.sticky), AnySpec(Schema.discovery), AnySpec(Schema.listener), AnySpec(Schema.listenerTLS),
    AnySpec(Schema.sni), AnySpec(Schema.pool), AnySpec(Schema.health), AnySpec(Schema.poolTLS),
    AnySpec(Schema.server), AnySpec(Schema.route), AnySpec(Schema.stickyRule),
]

func table(_ toml: String) throws -> TOMLTable {
    try TOMLTable(string: toml)
}

@Suite struct TableDriverTests {
    @Test("every key of a table is a candidate for the unknown-key suggestion", arguments: everyTable)
    func everyKeyIsSuggested(_ spec: AnySpec) throws {
        for name in spec.names {
            // Differs only in case: the closest possible misspelling, which must suggest exactly this key.
            let errors = spec.errors(try table("\(name.uppercased()) = 1"))
                .filter { $0.key == "x.\(name.uppercased())" }
            #expect(errors.map(\.description) == [
                "t.toml: x.\(name.uppercased()): unknown key (did you mean \"\(name)\"?)",
            ])
        }
    }

    @Test("a key of a neighbouring table is said to belong there", arguments: everyTable)
    func neighbourKeysNameTheirHome(_ spec: AnySpec) throws {
        for neighbour in spec.neighbours {
            for name in neighbour.keys where !spec.names.contains(name)
                && ValueRules.suggestion(for: name, among: spec.names) == nil {
                let home = spec.neighbours.first { $0.keys.contains(name) }!.header
                let errors = spec.errors(try table("\(name) = 1")).filter { $0.key == "x.\(name)" }
                #expect(errors.map(\.message) == ["unknown key; \(name) belongs in \(home), not \(spec.header)"])
            }
        }
    }

    @Test("a value of the wrong type names the file, the key and what was found", arguments: everyTable)
    func wrongTypeNamesFileAndKey(_ spec: AnySpec) throws {
        for name in spec.names {
            // No key of any table takes a date.
            let errors = spec.errors(try table("\(name) = 1979-05-27")).filter { $0.key == "x.\(name)" }
            #expect(errors.count == 1, "\(spec.header) \(name): \(errors)")
            guard let error = errors.first else { continue }
            #expect(error.file == "t.toml")
            #expect(error.message.hasPrefix("expected "), "\(error)")
            #expect(error.message.contains("found a date"), "\(error)")
        }
    }

    /// The keys each table requires, as operators see them in `missing` messages.
    static let requiredKeys: [String: Set<String>] = [
        "[[listener]]": ["name", "address"], "[listener.tls]": ["cert", "key"],
        "[[listener.tls.sni]]": ["cert", "key"], "[[pool]]": ["name", "server"],
        "[[pool.server]]": ["id", "address"], "[[route]]": ["name", "pool"], "[[route.sticky]]": ["path"],
    ]

    @Test("an empty table reports exactly its required keys as missing", arguments: everyTable)
    func requiredKeysAreReported(_ spec: AnySpec) throws {
        let errors = spec.errors(try table(""))
        #expect(Set(errors.map { String($0.key.dropFirst("x.".count)) }) == Self.requiredKeys[spec.header] ?? [])
        for error in errors {
            #expect(error.message.hasPrefix("missing required key") || error.message.contains("has no servers"),
                    "\(error)")
        }
    }

    @Test func integerRanges() {
        func check(_ rule: Rule<Int>, _ value: Int) -> (Int?, [String]) {
            var reader = Reader()
            let result = rule.check(value, Site(file: "t.toml", key: "limits.n"), &reader)
            return (result, reader.errors.map(\.description))
        }
        #expect(check(.integer(8...10_000), 8) == (8, []))
        #expect(check(.integer(8...10_000), 10_000) == (10_000, []))
        #expect(check(.integer(8...10_000), 7) == (nil, ["t.toml: limits.n: must be between 8 and 10000, found 7"]))
        #expect(check(.integer(8...10_000), 10_001)
                == (nil, ["t.toml: limits.n: must be between 8 and 10000, found 10001"]))
        #expect(check(.integer(1...Int.max), 0) == (nil, ["t.toml: limits.n: must be at least 1, found 0"]))
        #expect(check(.oneOf([302, 307], "must be 302 or 307"), 301)
                == (nil, ["t.toml: limits.n: must be 302 or 307, found 301"]))
    }

    @Test("an invalid value leaves the default in place; the outcome lists only the valid keys")
    func invalidValueKeepsDefault() throws {
        var reader = Reader()
        var limits = Limits()
        let outcome = reader.read(try table("max_header_count = 7\nbuffer_bytes = 8192"), Schema.limits,
                                  at: Site(file: "a.toml", key: "limits"), into: &limits)
        #expect(!outcome.valid)
        #expect(outcome.accepted == ["buffer_bytes"])
        #expect(limits == Limits(bufferBytes: 8192))
        #expect(reader.errors.map(\.description) == [
            "a.toml: limits.max_header_count: must be between 8 and 10000, found 7",
        ])
    }

    @Test("a once-per-configuration key read from a second file is refused, naming the first")
    func settingsKeysAreClaimedOnce() throws {
        var reader = Reader()
        var timeouts = Timeouts()
        _ = reader.read(try table(#"client_idle = "5s""#), Schema.timeouts, at: Site(file: "a.toml", key: "timeouts"),
                        into: &timeouts)
        _ = reader.read(try table(#"client_idle = "7s""#), Schema.timeouts, at: Site(file: "b.toml", key: "timeouts"),
                        into: &timeouts)
        #expect(timeouts.clientIdle == .seconds(5))
        #expect(reader.errors.map(\.description) == [
            "b.toml: timeouts.client_idle: already set in a.toml; each [timeouts] key may be set in only one file",
        ])
    }

    @Test("a declared name is stored even when it repeats, and the repeat names the first declaration")
    func declarations() throws {
        var reader = Reader()
        let first = reader.read(try table("id = \"s1\"\naddress = \"127.0.0.1:9001\""), Schema.server,
                                at: Site(file: "a.toml", key: "pool[0].server[0]"))
        var second = Server(id: "", address: Schema.noAddress)
        let outcome = reader.read(try table("id = \"s1\"\naddress = \"127.0.0.1:9002\""), Schema.server,
                                  at: Site(file: "b.toml", key: "pool[0].server[0]"), into: &second)
        #expect(first?.id == "s1")
        #expect(!outcome.valid && second.id == "s1")
        #expect(reader.errors.map(\.description) == [
            #"b.toml: pool[0].server[0].id: duplicate server id "s1"; already defined at a.toml: pool[0].server[0].id "#
                + "(server ids must be unique across all pools)",
        ])
    }
}

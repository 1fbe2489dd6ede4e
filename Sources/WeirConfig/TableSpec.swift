import TOMLKit

// The table driver: a TOML table is read by walking a `TableSpec`, a list of `KeySpec`s, each naming one key,
// the `Rule` that checks its value (type, range, form, and the exact operator message) and where the value is
// stored. Defaults are not repeated here: a table is read into a target that already holds them (the public
// initializers in Configuration.swift), and a key that is absent leaves its default in place.

/// Where a value is: the file and the key path within it, e.g. `pool[0].server[1].address`.
struct Site: Equatable {
    let file: String
    let key: String

    /// The key `name` inside this table.
    func child(_ name: String) -> Site { Site(file: file, key: "\(key).\(name)") }
    /// The element `index` of this array.
    func element(_ index: Int) -> Site { Site(file: file, key: "\(key)[\(index)]") }
    /// The table this key is in: `pool[0].server` -> `pool[0]`.
    var parent: Site {
        guard let dot = key.lastIndex(of: ".") else { return self }
        return Site(file: file, key: String(key[..<dot]))
    }
    /// `"file: key"`: how messages point at a first declaration.
    var location: String { "\(file): \(key)" }
}

/// A check and conversion of one TOML value. It records its own errors (each naming the site) and returns nil
/// when the value is invalid.
struct Rule<Value> {
    let check: (TOMLValueConvertible, Site, inout Reader) -> Value?

    init(_ check: @escaping (TOMLValueConvertible, Site, inout Reader) -> Value?) {
        self.check = check
    }

    /// The same rule for a target that is optional (nil meaning "not set").
    var some: Rule<Value?> {
        Rule<Value?> { value, site, reader in check(value, site, &reader).map { .some($0) } }
    }

    /// This rule followed by `next`, which sees the converted value (and may reject it with its own message).
    func then<Next>(_ next: @escaping (Value, Site, inout Reader) -> Next?) -> Rule<Next> {
        Rule<Next> { value, site, reader in check(value, site, &reader).flatMap { next($0, site, &reader) } }
    }
}

/// What an absent key means: nothing (its default stays), or an error with this message.
struct Missing<Target> {
    /// The message for the absent key given the table and what was read before it; nil when absence is fine.
    let message: (TOMLTable, Target) -> String?

    static var optional: Missing { Missing { _, _ in nil } }

    /// `missing required key, e.g. <example>`.
    static func required(_ example: String) -> Missing {
        Missing { _, _ in "missing required key, e.g. \(example)" }
    }
}

/// One key of a table: its name, what its absence means, and how its value is checked and stored.
struct KeySpec<Target> {
    let name: String
    let missing: Missing<Target>
    /// Checks the value and stores it into the target; false (with its errors recorded) when it is invalid.
    let store: (TOMLValueConvertible, Site, inout Reader, inout Target) -> Bool

    init(_ name: String, missing: Missing<Target> = .optional,
         store: @escaping (TOMLValueConvertible, Site, inout Reader, inout Target) -> Bool) {
        self.name = name
        self.missing = missing
        self.store = store
    }

    /// The key `name`, checked by `rule` and stored at `keyPath`.
    static func key<Value>(_ name: String, _ rule: Rule<Value>, _ keyPath: WritableKeyPath<Target, Value>,
                           missing: Missing<Target> = .optional) -> KeySpec {
        KeySpec(name, missing: missing) { value, site, reader, target in
            guard let checked = rule.check(value, site, &reader) else { return false }
            target[keyPath: keyPath] = checked
            return true
        }
    }
}

/// The header and keys of another table, for "belongs in [pool.health]" hints.
struct Neighbour {
    let header: String
    let keys: [String]
}

/// One kind of TOML table: its header, its keys in the order they are read and listed, and the checks that span
/// its keys.
struct TableSpec<Target> {
    /// What an operator writes, e.g. `[[pool]]`.
    let header: String
    let keys: [KeySpec<Target>]
    /// The target a fresh table starts from: every default in place.
    let defaults: () -> Target
    /// Each key may be set in only one file (the settings tables such as `[global]`).
    var oncePerConfiguration = false
    /// Tables whose keys are often misplaced here (the first that holds an unknown key names its home). A closure
    /// because tables name each other.
    var neighbours: () -> [Neighbour] = { [] }
    /// Checks across keys, after every key was read; false (with its errors recorded) when they do not fit.
    var check: ((TOMLTable, Site, inout Reader, inout Target) -> Bool)? = nil

    var names: [String] { keys.map(\.name) }
    var asNeighbour: Neighbour { Neighbour(header: header, keys: names) }
}

/// What reading one table found.
struct Outcome {
    /// Every key present was valid, no required key was missing, and the checks across keys passed.
    var valid = true
    /// The keys that were present and valid.
    var accepted: Set<String> = []
}

/// Reads tables by their specs, collecting every error. Also remembers what must be unique across the files:
/// the file that set each once-per-configuration key, and each declared name.
struct Reader {
    private(set) var errors: [ConfigError] = []
    /// `"global.workers"` -> the file that set it.
    private var owners: [String: String] = [:]
    /// Kind (`"pool"`, `"server id"`, ...) -> declared name -> `"file: key"` of its first declaration.
    private(set) var declared: [String: [String: String]] = [:]
    /// Kind -> declared names in declaration order (for "defined pools: ..." lists).
    private(set) var declarationOrder: [String: [String]] = [:]

    mutating func fail(_ site: Site, _ message: String) {
        // An empty key (TOML allows `"" = 1`) is shown quoted, so the line still reads FILE: KEY: MESSAGE.
        errors.append(ConfigError(file: site.file, key: site.key.isEmpty ? "\"\"" : Self.oneLine(site.key),
                                  message: Self.oneLine(message)))
    }

    /// `text` with control characters other than tab escaped (`\n`, `\r`, `\u{1B}`): keys and messages quote what
    /// the operator wrote (TOML strings may hold any of them) and toml++'s own messages may quote a line break, but
    /// `weir check` prints one problem per line. Found by fuzzing (Fuzz/Targets/Config.swift).
    static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) else { return text }
        var out = ""
        for c in text.unicodeScalars {
            switch c {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out.unicodeScalars.append(c)
            case _ where c.value < 0x20 || c.value == 0x7F: out += "\\u{" + String(c.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    mutating func fail(_ file: String, _ key: String, _ message: String) {
        fail(Site(file: file, key: key), message)
    }

    /// Reads `table` (at `site`) into `target` by `spec`: first the unknown keys, then every key of the spec in
    /// order (absent ones by their `missing`), then the spec's checks across keys.
    mutating func read<Target>(_ table: TOMLTable, _ spec: TableSpec<Target>, at site: Site,
                               into target: inout Target) -> Outcome {
        reportUnknownKeys(table, spec, at: site)
        var outcome = Outcome()
        for key in spec.keys {
            let keySite = site.child(key.name)
            guard let value = table[key.name] else {
                if let message = key.missing.message(table, target) {
                    fail(keySite, message)
                    outcome.valid = false
                }
                continue
            }
            if spec.oncePerConfiguration, !claim(keySite, header: spec.header) { continue }
            if key.store(value, keySite, &self, &target) {
                outcome.accepted.insert(key.name)
            } else {
                outcome.valid = false
            }
        }
        if let check = spec.check, !check(table, site, &self, &target) { outcome.valid = false }
        return outcome
    }

    /// Reads a fresh table (starting from the spec's defaults); the target is returned only when valid.
    mutating func read<Target>(_ table: TOMLTable, _ spec: TableSpec<Target>, at site: Site) -> Target? {
        var target = spec.defaults()
        return read(table, spec, at: site, into: &target).valid ? target : nil
    }

    /// One error per key of `table` that `spec` does not know: a suggestion when one key is close, else the
    /// neighbouring table it belongs in, else the list of known keys.
    mutating func reportUnknownKeys<Target>(_ table: TOMLTable, _ spec: TableSpec<Target>, at site: Site) {
        let known = spec.names
        let unknown = table.keys.sorted().filter { !known.contains($0) }
        guard !unknown.isEmpty else { return }
        let neighbours = spec.neighbours()
        for key in unknown {
            let message: String
            if let match = ValueRules.suggestion(for: key, among: known) {
                message = "unknown key (did you mean \"\(match)\"?)"
            } else if let home = neighbours.first(where: { $0.keys.contains(key) }) {
                message = "unknown key; \(key) belongs in \(home.header), not \(spec.header)"
            } else {
                message = "unknown key; known keys in \(spec.header): \(known.joined(separator: ", "))"
            }
            fail(site.child(key), message)
        }
    }

    /// Records that `site`'s file sets this once-per-configuration key; false (an error) when another file did.
    mutating func claim(_ site: Site, header: String) -> Bool {
        if let owner = owners[site.key] {
            fail(site, "already set in \(owner); each \(header) key may be set in only one file")
            return false
        }
        owners[site.key] = site.file
        return true
    }

    /// Records the first declaration of `name` as a `kind`; on a repeat records
    /// `duplicate <kind> "<name>"; already defined at <first><suffix>` and returns false.
    mutating func declare(_ name: String, kind: String, at site: Site, suffix: String = "") -> Bool {
        if let first = declared[kind]?[name] {
            fail(site, "duplicate \(kind) \"\(name)\"; already defined at \(first)\(suffix)")
            return false
        }
        declared[kind, default: [:]][name] = site.location
        declarationOrder[kind, default: []].append(name)
        return true
    }

    /// The tables of an array of tables (`header` such as `[[pool.server]]`), with their index; records an error
    /// for the array itself or for each element that is not a table. nil when `value` is not an array.
    mutating func tables(_ value: TOMLValueConvertible, at site: Site, header: String) -> [(Int, TOMLTable)]? {
        guard let array = value.array else {
            if value.type == .table {
                fail(site, "expected an array of tables (\(header)), found a table; write \(header), not \(header.dropFirst().dropLast())")
            } else {
                fail(site, "expected an array of tables (\(header)), found \(ValueRules.describe(value))")
            }
            return nil
        }
        var result: [(Int, TOMLTable)] = []
        for (index, element) in array.enumerated() {
            guard let table = element.table else {
                fail(site.element(index), "expected a table (\(header)), found \(ValueRules.describe(element))")
                continue
            }
            result.append((index, table))
        }
        return result
    }

    /// Reads every element of an array of tables by `spec`: the valid ones, and whether all were valid (every
    /// element a table and each valid).
    mutating func readArray<Target>(_ value: TOMLValueConvertible, _ spec: TableSpec<Target>,
                                    at site: Site) -> (elements: [(Site, Target)], valid: Bool)? {
        guard let tables = tables(value, at: site, header: spec.header) else { return nil }
        var valid = tables.count == value.array?.count ?? 0
        var elements: [(Site, Target)] = []
        for (index, table) in tables {
            let elementSite = site.element(index)
            if let target = read(table, spec, at: elementSite) {
                elements.append((elementSite, target))
            } else {
                valid = false
            }
        }
        return (elements, valid)
    }
}

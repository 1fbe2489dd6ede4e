import TOMLKit

// The value rules the tables are made of: each checks one TOML value's type and form and, when it is wrong,
// records the exact operator message at the value's site.

/// How a text rule treats the empty string.
enum EmptyText {
    /// Like any other text (the rule's check decides).
    case checked
    /// Rejected with this message.
    case rejected(String)
    /// Blank text (empty or only whitespace) rejected with this message.
    case blankRejected(String)
}

extension Rule where Value == String {
    static var string: Rule {
        Rule { value, site, reader in
            if let text = value.string { return text }
            reader.fail(site, "expected a string, found \(ValueRules.describe(value))")
            return nil
        }
    }

    /// A name (`name`, `id`, a referenced pool): a string that is not empty or blank.
    static func name(example: String) -> Rule {
        string.then { text, site, reader in
            guard !text.allSatisfy(\.isWhitespace) else {
                reader.fail(site, "must not be empty, e.g. \(example)")
                return nil
            }
            return text
        }
    }

    /// A string that `normalized` accepts (returning the value to store): otherwise
    /// `invalid <what> "<text>"; <form>`.
    static func text(_ what: String, form: String, empty: EmptyText = .checked,
                     normalized: @escaping (String) -> String?) -> Rule {
        string.then { text, site, reader in
            switch empty {
            case .rejected(let message) where text.isEmpty,
                 .blankRejected(let message) where text.allSatisfy(\.isWhitespace):
                reader.fail(site, message)
                return nil
            default:
                break
            }
            guard let result = normalized(text) else {
                reader.fail(site, "invalid \(what) \"\(ValueRules.clip(text))\"; \(form)")
                return nil
            }
            return result
        }
    }

    /// A string that `valid` accepts, stored as written.
    static func text(_ what: String, form: String, empty: EmptyText = .checked,
                     valid: @escaping (String) -> Bool) -> Rule {
        text(what, form: form, empty: empty) { valid($0) ? $0 : nil }
    }

    /// Any string that is not empty: `message` otherwise.
    static func nonEmpty(_ message: String, blank: Bool = false) -> Rule {
        string.then { text, site, reader in
            guard blank ? !text.allSatisfy(\.isWhitespace) : !text.isEmpty else {
                reader.fail(site, message)
                return nil
            }
            return text
        }
    }

    /// A TLS file key: a non-empty path naming a readable file, PEM text unless `kind` is the OCSP response.
    static func tlsFile(_ kind: ValueRules.TLSFile) -> Rule {
        string.then { path, site, reader in
            if path.allSatisfy(\.isWhitespace) {
                let name = site.key.split(separator: ".").last.map(String.init) ?? site.key
                reader.fail(site, "must not be empty, e.g. \(name) = \"\(kind.example)\"")
                return nil
            }
            if let problem = ValueRules.checkTLSFile(path, pem: kind.isPEM) {
                reader.fail(site, problem.message(kind))
                return nil
            }
            return path
        }
    }
}

extension Rule where Value == Int {
    /// An integer within `range`: `must be between L and U` (`must be at least L` when unbounded above).
    static func integer(_ range: ClosedRange<Int>) -> Rule {
        Rule { value, site, reader in
            guard let number = value.int else {
                reader.fail(site, "expected an integer, found \(ValueRules.describe(value))")
                return nil
            }
            guard range.contains(number) else {
                if range.upperBound == Int.max {
                    reader.fail(site, "must be at least \(range.lowerBound), found \(number)")
                } else {
                    reader.fail(site, "must be between \(range.lowerBound) and \(range.upperBound), found \(number)")
                }
                return nil
            }
            return number
        }
    }

    /// An integer that is one of `choices`: `message` followed by `, found N` otherwise.
    static func oneOf(_ choices: [Int], _ message: String) -> Rule {
        integer(Int.min...Int.max).then { number, site, reader in
            guard choices.contains(number) else {
                reader.fail(site, "\(message), found \(number)")
                return nil
            }
            return number
        }
    }
}

extension Rule where Value == Bool {
    static var boolean: Rule {
        Rule { value, site, reader in
            if value.type == .bool, let flag = value.bool { return flag }
            reader.fail(site, "expected true or false, found \(ValueRules.describe(value))")
            return nil
        }
    }
}

extension Rule where Value == Duration {
    /// A duration string; zero only when `allowZero`; at least `minimum` when given.
    static func duration(allowZero: Bool = false, minimum: Duration? = nil) -> Rule {
        Rule { value, site, reader in
            let form = allowZero ? ValueRules.durationFormAllowingZero : ValueRules.durationForm
            guard let text = value.string else {
                reader.fail(site, "\(form), found \(ValueRules.describe(value))")
                return nil
            }
            guard let duration = ValueRules.parseDuration(text, allowZero: allowZero) else {
                reader.fail(site, "\(form), found \"\(ValueRules.clip(text))\"")
                return nil
            }
            if let minimum, duration < minimum {
                reader.fail(site, "must be at least \(ValueRules.formatDuration(minimum)), found \"\(ValueRules.clip(text))\"")
                return nil
            }
            return duration
        }
    }
}

extension Rule where Value: RawRepresentable & CaseIterable, Value.RawValue == String {
    /// One of an enumeration's raw values: `unknown <kind> "x" (did you mean "y"?); supported <plural>: ...`.
    static func choice(kind: String, plural: String) -> Rule {
        Rule<String>.string.then { text, site, reader in
            if let result = Value(rawValue: text) { return result }
            let names = Value.allCases.map(\.rawValue)
            let hint = ValueRules.suggestion(for: text, among: names).map { " (did you mean \"\($0)\"?)" } ?? ""
            reader.fail(site, "unknown \(kind) \"\(ValueRules.clip(text))\"\(hint); supported \(plural): \(ValueRules.quotedList(names))")
            return nil
        }
    }
}

extension Rule where Value == [String] {
    /// An array of strings, each accepted by `normalized`: `<arrayForm>, found ...` for anything but an array,
    /// `<elementForm>, found ...` for an element that is not a string, `invalid <what> "x"; <elementForm>` for a
    /// string `normalized` rejects. Every element is checked (each error names its index).
    static func strings(arrayForm: String, elementForm: String, what: String,
                        normalized: @escaping (String) -> String?) -> Rule {
        Rule { value, site, reader in
            guard let array = value.array else {
                reader.fail(site, "\(arrayForm), found \(ValueRules.describe(value))")
                return nil
            }
            var result: [String] = []
            var valid = true
            for (index, element) in array.enumerated() {
                guard let text = element.string else {
                    valid = false
                    reader.fail(site.element(index), "\(elementForm), found \(ValueRules.describe(element))")
                    continue
                }
                if let accepted = normalized(text) {
                    result.append(accepted)
                } else {
                    valid = false
                    reader.fail(site.element(index), "invalid \(what) \"\(ValueRules.clip(text))\"; \(elementForm)")
                }
            }
            return valid ? result : nil
        }
    }

    /// `[[route.sticky]] complete`: an array of paths or patterns, each starting with "/".
    static var completePaths: Rule {
        strings(arrayForm: ValueRules.completeArrayForm, elementForm: ValueRules.completePathForm, what: "path") {
            ValueRules.isValidPathPrefix($0) ? $0 : nil
        }
    }

    /// `[[pool]] rewrite_body_types`: an array of `type/subtype` media types, returned in lower case.
    static var contentTypes: Rule {
        strings(arrayForm: ValueRules.contentTypeArrayForm, elementForm: ValueRules.contentTypeForm,
                what: "content type") { ValueRules.isValidContentType($0) ? $0.lowercased() : nil }
    }
}

extension Rule where Value == Double {
    /// `first_level` / `second_level`: 0.0...1.0 as a float, 0 or 1, or a percentage string.
    static var level: Rule {
        Rule { value, site, reader in
            switch ValueRules.parseLevel(value) {
            case .value(let level):
                return level
            case .outOfRange(let found):
                reader.fail(site, #"must be between 0.0 and 1.0 (or "0%" and "100%"), found \#(found)"#)
            case .malformed:
                let found = value.string.map { "\"\(ValueRules.clip($0))\"" } ?? ValueRules.describe(value)
                reader.fail(site, "\(ValueRules.levelForm), found \(found)")
            }
            return nil
        }
    }
}

extension Rule where Value == HashKey {
    static var hashKey: Rule {
        Rule<String>.string.then { text, site, reader in
            switch ValueRules.parseHashKey(text) {
            case .success(let hashKey):
                return hashKey
            case .failure(.unknown):
                let hint = ValueRules.suggestion(for: text, among: ["source", "path"]).map { " (did you mean \"\($0)\"?)" }
                reader.fail(site, "invalid hash_key \"\(ValueRules.clip(text))\"\(hint ?? ""); \(ValueRules.hashKeyForm)")
            case .failure(.badName(let kind, let name)):
                let reason = name.isEmpty ? "the \(kind) name is missing"
                    : "\"\(ValueRules.clip(name))\" is not a valid \(kind) name"
                reader.fail(site, "invalid hash_key \"\(ValueRules.clip(text))\": \(reason); \(ValueRules.hashKeyForm)")
            }
            return nil
        }
    }
}

extension Rule where Value == [ClosedRange<Int>] {
    /// `expect_status`: a non-empty array of statuses (integers) and `"low-high"` / `"status"` strings.
    static var expectStatus: Rule {
        Rule { value, site, reader in
            let arrayForm = #"expected an array of statuses such as [200, 204] or ["200-399"]"#
            guard let array = value.array else {
                reader.fail(site, "\(arrayForm), found \(ValueRules.describe(value))")
                return nil
            }
            guard !array.isEmpty else {
                reader.fail(site, "must not be empty; \(arrayForm)")
                return nil
            }
            var ranges: [ClosedRange<Int>] = []
            var valid = true
            for (index, element) in array.enumerated() {
                let elementSite = site.element(index)
                if element.type == .int {
                    if let status = Rule<Int>.integer(ValueRules.statusRange).check(element, elementSite, &reader) {
                        ranges.append(status...status)
                    } else {
                        valid = false
                    }
                } else if let text = element.string {
                    let what = text.contains("-") ? "status range" : "status"
                    let shown = ValueRules.clip(text)
                    switch ValueRules.parseStatusRange(text) {
                    case .success(let range):
                        ranges.append(range)
                    case .failure(.malformed):
                        valid = false
                        reader.fail(elementSite, "invalid \(what) \"\(shown)\"; \(ValueRules.statusForm)")
                    case .failure(.outOfRange):
                        valid = false
                        reader.fail(elementSite, "invalid \(what) \"\(shown)\": statuses must be between 100 and 599")
                    case .failure(.reversed):
                        valid = false
                        let bounds = text.split(separator: "-")
                        reader.fail(elementSite, "invalid \(what) \"\(shown)\": the first status must not be greater "
                                    + "than the second (write \"\(bounds[1])-\(bounds[0])\")")
                    }
                } else {
                    valid = false
                    reader.fail(elementSite, "\(ValueRules.statusForm), found \(ValueRules.describe(element))")
                }
            }
            return valid ? ranges : nil
        }
    }
}

extension Rule where Value == SocketAddress {
    /// A numeric address and port (`example` names one in messages); port 0 only when `allowPortZero`.
    static func address(example: String, allowPortZero: Bool) -> Rule {
        Rule<String>.string.then { text, site, reader in
            switch SocketAddress.parseDetailed(text) {
            case .failure(let problem):
                reader.fail(site, ValueRules.addressProblem(ValueRules.clip(text), problem, example: example))
                return nil
            case .success(let address):
                if address.port == 0 && !allowPortZero {
                    reader.fail(site, "invalid address \"\(text)\": a server port must be between 1 and 65535; "
                                + ValueRules.addressForm(example: example))
                    return nil
                }
                return address
            }
        }
    }
}

extension Rule where Value == SocketAddress? {
    /// `[admin] address`: `"off"` (nil) or a numeric address.
    static var adminAddress: Rule {
        Rule { value, site, reader in
            let off = #", or "off" to turn the admin listener off"#
            let example = "127.0.0.1:9090"
            guard let text = value.string else {
                reader.fail(site, ValueRules.addressForm(example: example) + off + ", found \(ValueRules.describe(value))")
                return nil
            }
            if text == "off" { return .some(nil) }
            switch SocketAddress.parseDetailed(text) {
            case .failure(let problem):
                reader.fail(site, ValueRules.addressProblem(ValueRules.clip(text), problem, example: example) + off)
                return nil
            case .success(let address):
                return .some(address)
            }
        }
    }
}

extension Rule where Value == String? {
    /// `[discovery]` paths: `"off"` (nil) or a path.
    static func discoveryPath(example: String) -> Rule {
        Rule { value, site, reader in
            let form = ValueRules.discoveryPathForm(example: example)
            guard let text = value.string else {
                reader.fail(site, "\(form), found \(ValueRules.describe(value))")
                return nil
            }
            if text == "off" { return .some(nil) }
            guard ValueRules.isValidPathPrefix(text), !text.contains("*") else {
                reader.fail(site, "invalid path \"\(ValueRules.clip(text))\"; \(form)")
                return nil
            }
            return .some(text)
        }
    }
}

extension Rule where Value == AccessLog {
    static var accessLog: Rule {
        Rule { value, site, reader in
            let form = #"expected "stdout", "off" or an absolute file path such as "/var/log/weir/access.log""#
            guard let text = value.string else {
                reader.fail(site, "\(form), found \(ValueRules.describe(value))")
                return nil
            }
            switch text {
            case "stdout": return .stdout
            case "off": return .off
            default:
                if text.hasPrefix("/") && text.count > 1 && !text.hasSuffix("/") { return .file(text) }
                reader.fail(site, "\(form), found \"\(ValueRules.clip(text))\"")
                return nil
            }
        }
    }
}

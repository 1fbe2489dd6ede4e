import Foundation
import TOMLKit

/// Reads `conf.d/*.toml` into one validated `WeirConfiguration`.
///
/// Files are merged in the order given (for a directory: lexical byte order of the file names). The
/// `[[listener]]`, `[[pool]]` and `[[route]]` arrays of all files are concatenated; each `[global]`,
/// `[timeouts]`, `[limits]` and `[admin]` key may be set in only one file. Names (listeners, pools, routes) and
/// server ids must be unique across all files, and routes are resolved against pools (`pool`, `spill`) and
/// listeners only after every file has been read, so a route may name a pool defined in a later file.
/// Likewise the admin address is compared with every listener address after the last file.
///
/// A directory with `[peer]` (a `weir peer` directory) gets, after validation, the pool `group` built from
/// `[peer]` and `[group]` and, when it has no `[[route]]`, a route `/` to it on every listener (see `PeerSynthesis`).
///
/// Every problem found is collected and thrown together as `ConfigErrors`; each names its file and key.
/// When a file cannot be read or has a TOML syntax error its contents are unknown, so the checks that
/// span files (dangling route references, "no listener", "no route") are skipped to avoid spurious errors.
public enum ConfigLoader {
    /// Reads every *.toml file directly in `directory` in lexical (byte) order and merges them.
    /// Subdirectories and hidden files (names starting with ".") are ignored. Error and `sourceFiles` names are
    /// the directory joined with the file name, e.g. `conf.d/10-listeners.toml`.
    /// Throws ConfigErrors with all problems found.
    public static func load(directory: String) throws -> WeirConfiguration {
        let fileManager = FileManager.default
        let suffix = " of *.toml configuration files, such as conf.d"
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw ConfigErrors(errors: [ConfigError(file: directory, key: "directory",
                                                    message: "does not exist; expected a directory" + suffix)])
        }
        guard isDirectory.boolValue else {
            throw ConfigErrors(errors: [ConfigError(file: directory, key: "directory",
                                                    message: "is not a directory; expected a directory" + suffix)])
        }
        let entries: [String]
        do {
            entries = try fileManager.contentsOfDirectory(atPath: directory)
        } catch {
            throw ConfigErrors(errors: [ConfigError(file: directory, key: "directory",
                                                    message: "cannot be listed (check its permissions)")])
        }
        let names = entries
            .filter { $0.hasSuffix(".toml") && !$0.hasPrefix(".") }
            .filter { name in
                var entryIsDirectory: ObjCBool = false
                let exists = fileManager.fileExists(atPath: joinPath(directory, name), isDirectory: &entryIsDirectory)
                return exists && !entryIsDirectory.boolValue
            }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        guard !names.isEmpty else {
            throw ConfigErrors(errors: [ConfigError(file: directory, key: "*.toml", message: noFilesMessage)])
        }
        let inputs: [FileInput] = names.map { name in
            let path = joinPath(directory, name)
            guard let data = fileManager.contents(atPath: path) else {
                return .unreadable(name: path, message: "cannot be read (check its permissions)")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                return .unreadable(name: path, message: "is not valid UTF-8 text")
            }
            return .contents(name: path, text: text)
        }
        return try build(inputs, scope: directory)
    }

    /// Same, from in-memory files (name, contents) in the given order: for tests.
    /// Problems that belong to no single file are reported with the file name `(configuration)`.
    public static func parse(files: [(name: String, contents: String)]) throws -> WeirConfiguration {
        guard !files.isEmpty else {
            throw ConfigErrors(errors: [ConfigError(file: configurationScope, key: "*.toml", message: noFilesMessage)])
        }
        return try build(files.map { .contents(name: $0.name, text: $0.contents) }, scope: configurationScope)
    }

    // MARK: - Internals

    static let configurationScope = "(configuration)"
    static let noFilesMessage =
        "no *.toml files found; the configuration needs at least one [[listener]], [[pool]] and [[route]]"

    enum FileInput {
        case contents(name: String, text: String)
        case unreadable(name: String, message: String)
    }

    static func joinPath(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    static func build(_ inputs: [FileInput], scope: String) throws -> WeirConfiguration {
        var merger = Merger(scope: scope)
        for input in inputs {
            switch input {
            case .unreadable(let name, let message):
                merger.sourceFiles.append(name)
                merger.fail(name, "(file)", message)
                merger.incomplete = true
            case .contents(let name, let text):
                merger.sourceFiles.append(name)
                if let at = TOMLGuard.abortingTableHeader(in: text) {
                    // toml++ would abort the process on this text instead of throwing (see TOMLGuard).
                    merger.fail(name, "line \(at.line), column \(at.column)",
                                "TOML syntax error: Error while parsing table header: expected a key after '[', "
                                    + "such as [pool] or [[pool.server]]")
                    merger.incomplete = true
                    continue
                }
                let table: TOMLTable
                do {
                    table = try TOMLTable(string: text)
                } catch let error as TOMLParseError {
                    let position = error.source.begin
                    let key = position.line > 0 ? "line \(position.line), column \(position.column)" : "(syntax)"
                    merger.fail(name, key, "TOML syntax error: \(error.description)")
                    merger.incomplete = true
                    continue
                } catch {
                    merger.fail(name, "(syntax)", "TOML syntax error: \(error)")
                    merger.incomplete = true
                    continue
                }
                merger.process(file: name, table: table)
            }
        }
        merger.finish()
        if !merger.errors.isEmpty { throw ConfigErrors(errors: merger.errors) }
        return PeerSynthesis.apply(to: merger.configuration)
    }
}

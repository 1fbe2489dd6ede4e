import Testing
@testable import WeirConfig

/// A complete, valid configuration in one file: one listener, one pool with one server, one route.
let baseTOML = """
    [[listener]]
    name = "public"
    address = "127.0.0.1:8080"

    [[pool]]
    name = "demo"

    [[pool.server]]
    id = "demo-1"
    address = "127.0.0.1:9001"

    [[route]]
    name = "default"
    pool = "demo"

    """

/// Parses the files and returns every error line, or [] when the configuration is valid.
func errorLines(_ files: [(String, String)]) -> [String] {
    do {
        _ = try ConfigLoader.parse(files: files.map { (name: $0.0, contents: $0.1) })
        return []
    } catch let errors as ConfigErrors {
        return errors.errors.map(\.description)
    } catch {
        return ["unexpected error type: \(error)"]
    }
}

/// Errors of `a.toml` = the valid base followed by `extra` (which must start with a table header).
func errorLines(appending extra: String) -> [String] {
    errorLines([("a.toml", baseTOML + extra)])
}

/// Parses files that are expected to be valid.
func parse(_ files: [(String, String)]) throws -> WeirConfiguration {
    try ConfigLoader.parse(files: files.map { (name: $0.0, contents: $0.1) })
}

import Foundation
import Glibc
import Testing
@testable import WeirIO

@Suite struct AtomicFileTests {
    private func directory(_ name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("weir-atomic-\(getpid())-\(name)").path
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func replacesTheContentsWithMode0600AndLeavesNoTemporaryFile() throws {
        let dir = try directory("replace")
        let path = dir + "/state.json"
        try AtomicFile.write(Array("old\n".utf8), to: path, mode: 0o644)
        try AtomicFile.write(Array("new\n".utf8), to: path)
        #expect(FileManager.default.contents(atPath: path) == Data("new\n".utf8))
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)                       // the mode asked for, whatever the umask
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["state.json"])
    }

    @Test func aFailedWriteNamesThePathAndLeavesTheOldFile() throws {
        let dir = try directory("fail")
        let path = dir + "/state.json"
        try AtomicFile.write(Array("kept\n".utf8), to: path)
        // The target is a directory now: the rename fails, the temporary file is removed.
        let blocked = dir + "/sub"
        try FileManager.default.createDirectory(atPath: blocked + "/x", withIntermediateDirectories: true)
        #expect { try AtomicFile.write([1], to: blocked) } throws: { "\($0)".contains("rename \(blocked).tmp.") }
        #expect { try AtomicFile.write([1], to: dir + "/missing/state.json") } throws: { "\($0)".contains("create \(dir)/missing/state.json.tmp.") }
        #expect(FileManager.default.contents(atPath: path) == Data("kept\n".utf8))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == ["state.json", "sub"])
    }
}

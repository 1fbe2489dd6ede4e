import Foundation
import Testing
import WeirBalance
import WeirConfig
@testable import WeirGateway

/// The exact bytes of each access-log format for fixed exchanges, and JSON that stays valid
/// whatever a client puts in its request line or header fields.
@Suite struct AccessLogFormatTests {
    /// 2026-12-01T21:55:08.123Z
    private let wallMs: Int64 = 1_796_162_108_123

    private func entry(line: String = "GET /a?b=1 HTTP/1.1", status: Int = 200, server: String? = "s1") -> AccessLogEntry {
        var e = AccessLogEntry(wallMs: wallMs, client: "192.0.2.7", clientPort: 50123, listener: "web",
                               requestLine: ArraySlice(line.utf8), status: status, bytes: 1234, totalMs: 17)
        e.server = server
        e.pool = server == nil ? nil : "app"
        e.upstreamMs = 12
        return e
    }

    private func render(_ e: AccessLogEntry, _ format: AccessLogFormat) -> String {
        var formatter = AccessLogFormatter(format: format)
        var out: [UInt8] = []
        formatter.append(e, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func json(_ e: AccessLogEntry) throws -> [String: Any] {
        let line = render(e, .json)
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        return try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func theWeirLineIsTheOneWeirAlwaysWrote() {
        #expect(render(entry(), .weir) == "2026-12-01T21:55:08.123Z 192.0.2.7 \"GET /a?b=1 HTTP/1.1\" 200 1234 s1 17ms 12ms\n")
        var redirect = entry(status: 307)
        redirect.redirect = true
        redirect.upstreamMs = nil
        #expect(render(redirect, .weir) == "2026-12-01T21:55:08.123Z 192.0.2.7 \"GET /a?b=1 HTTP/1.1\" 307 1234 ->s1 17ms -\n")
        #expect(render(entry(line: "GET /\"x\u{1}", status: 400, server: nil), .weir).contains("\"GET /?x?\" 400 1234 - 17ms"))
    }

    @Test func theCombinedLineIsNginxs() {
        var e = entry()
        e.referer = ArraySlice("https://example.com/".utf8)
        e.userAgent = ArraySlice("curl/8.5.0".utf8)
        #expect(render(e, .combined)
                == "192.0.2.7 - - [01/Dec/2026:21:55:08 +0000] \"GET /a?b=1 HTTP/1.1\" 200 1234 \"https://example.com/\" \"curl/8.5.0\"\n")
        // Absent fields are "-"; quotes, backslashes, control and non-ASCII bytes are \xHH.
        var hostile = entry(line: "GET /\"\\ HTTP/1.1")
        hostile.userAgent = ArraySlice([0x61, 0x22, 0x0A, 0xC3, 0xA9])
        #expect(render(hostile, .combined).hasSuffix("\"GET /\\x22\\x5c HTTP/1.1\" 200 1234 \"-\" \"a\\x22\\x0a\\xc3\\xa9\"\n"))
    }

    @Test func theJSONLineHasEveryFieldInAFixedOrder() {
        var e = entry()
        e.upstreamConnectMs = 3
        e.pin = .kept
        e.tls = "TLSv1.3"
        e.userAgent = ArraySlice("curl/8.5.0".utf8)
        #expect(render(e, .json) == #"{"time":"2026-12-01T21:55:08.123Z","client":"192.0.2.7","client_port":50123,"listener":"web","#
                + #""method":"GET","target":"/a?b=1","version":"HTTP/1.1","status":200,"bytes":1234,"server":"s1","pool":"app","#
                + #""duration_ms":17,"upstream_connect_ms":3,"upstream_ms":12,"pin":"kept","mode":"proxy","tls":"TLSv1.3","#
                + #""user_agent":"curl/8.5.0","referer":null}"# + "\n")
    }

    @Test func unknownJSONFieldsAreNullAndARedirectSaysSo() throws {
        var e = entry(line: "garbage", status: 400, server: nil)
        e.upstreamMs = nil
        let object = try json(e)
        for key in ["target", "version", "server", "pool", "upstream_connect_ms", "upstream_ms", "pin", "tls", "user_agent", "referer"] {
            #expect(object[key] is NSNull, "\(key)")
        }
        #expect(object["method"] as? String == "garbage" && object["mode"] as? String == "proxy")
        var redirect = entry(status: 307)
        redirect.redirect = true
        #expect(try json(redirect)["mode"] as? String == "redirect")
    }

    @Test func hostileBytesStayOneValidJSONLine() throws {
        // Quotes, backslashes, CR/LF, NUL, DEL, ESC, valid UTF-8, and invalid UTF-8 (a stray
        // continuation byte, a cut sequence, an overlong "/", a surrogate, beyond U+10FFFF).
        let target: [UInt8] = Array("/\"\\\r\n\t".utf8) + [0x00, 0x7F, 0x1B] + Array("é€😀".utf8)
            + [0x80, 0xE2, 0x82, 0xC0, 0xAF, 0xED, 0xA0, 0x80, 0xF4, 0x90, 0x80, 0x80]
        var e = entry()
        e.requestLine = ArraySlice(Array("GET ".utf8) + target + Array(" HTTP/1.1".utf8))
        e.userAgent = ArraySlice(Array("x\"}\n{\"status\":1".utf8) + [0xFF])
        let line = render(e, .json)
        #expect(line.contains(#""target":"/\"\\\r\n\t\u0000\u007f\u001bé€😀\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd""#))
        let object = try json(e)
        #expect(object["user_agent"] as? String == "x\"}\n{\"status\":1\u{FFFD}")
        #expect(object["status"] as? Int == 200)
    }

    @Test func theTimeIsFormattedAgainWhenTheSecondChanges() {
        var formatter = AccessLogFormatter(format: .weir)
        var out: [UInt8] = []
        var e = entry()
        formatter.append(e, to: &out)
        e.wallMs = wallMs + 1_000 * 86_400 * 31 + 5   // a month later, 128 ms
        formatter.append(e, to: &out)
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n")
        #expect(lines[0].hasPrefix("2026-12-01T21:55:08.123Z") && lines[1].hasPrefix("2027-01-01T21:55:08.128Z"))
    }

    @Test func civilTimeMatchesKnownDates() {
        #expect(CivilTime(unixSeconds: 0) == CivilTime(year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0))
        #expect(CivilTime(unixSeconds: 951_782_400) == CivilTime(year: 2000, month: 2, day: 29, hour: 0, minute: 0, second: 0))
        #expect(CivilTime(unixSeconds: 4_107_542_399) == CivilTime(year: 2100, month: 2, day: 28, hour: 23, minute: 59, second: 59))
    }

    @Test func pinOutcomesFollowTheCommit() {
        #expect(PinOutcome(nil) == nil)
        #expect(PinOutcome(.init(change: .touch(key: "k", server: 1, path: "/b", idleMs: 1, presented: false))) == .new)
        #expect(PinOutcome(.init(change: .touch(key: "k", server: 1, path: "/b", idleMs: 1, presented: true))) == .kept)
        #expect(PinOutcome(.init(change: .touch(key: "k", server: 1, path: "/b", idleMs: 1), moved: true)) == .moved)
        #expect(PinOutcome(.init(change: .remove(key: "k"))) == .ended)
        #expect(PinOutcome(.init(rejected: .tampered)) == .rejected)
    }
}

/// Operational messages: the level a message asks for, the threshold, and the two line shapes.
@Suite struct OperationalLogTests {
    private func render(_ message: String, _ threshold: LogLevel = .info, journal: Bool) -> String? {
        OperationalLog.render(message, threshold: threshold, journal: journal, timestamp: { "2026-12-01T21:55:08.123Z" })
    }

    @Test func underTheJournalEachLineCarriesItsPriority() {
        #expect(render(LogLevel.warning.tag + "weir: server s1 is down", journal: true) == "<4>weir: server s1 is down\n")
        #expect(render(LogLevel.error.tag + "weir: SIGHUP: reload failed\n  00.toml: x", journal: true)
                == "<3>weir: SIGHUP: reload failed\n<3>  00.toml: x\n")
        #expect(render("weir: untagged", journal: true) == "<6>weir: untagged\n")
        #expect(render("<1>weir: alert", journal: true) == "<3>weir: alert\n")
    }

    @Test func elsewhereEachLineCarriesATimestampAndTheLevelWord() {
        #expect(render(LogLevel.notice.tag + "weir: serving", journal: false) == "2026-12-01T21:55:08.123Z notice weir: serving\n")
        #expect(render("<9>not a tag", journal: false) == "2026-12-01T21:55:08.123Z info <9>not a tag\n")
    }

    @Test func messagesBelowTheThresholdAreDropped() {
        #expect(render("weir: info", .warning, journal: true) == nil)
        #expect(render(LogLevel.notice.tag + "weir: notice", .warning, journal: true) == nil)
        #expect(render(LogLevel.warning.tag + "weir: warning", .warning, journal: true) != nil)
        #expect(render(LogLevel.error.tag + "weir: error", .error, journal: true) != nil)
        #expect(render(LogLevel.debug.tag + "weir: debug", .info, journal: true) == nil)
        #expect(render(LogLevel.debug.tag + "weir: debug", .debug, journal: true) == "<7>weir: debug\n")
    }

    @Test func journalStreamMustNameStandardError() {
        #expect(!OperationalLog.stderrIsJournal([:]))
        #expect(!OperationalLog.stderrIsJournal(["JOURNAL_STREAM": "1:2"]))
        var st = stat()
        fstat(2, &st)
        #expect(OperationalLog.stderrIsJournal(["JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino)"]))
    }
}

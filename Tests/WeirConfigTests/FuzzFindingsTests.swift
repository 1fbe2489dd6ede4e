import Testing
@testable import WeirConfig

// Inputs found by the config fuzz target (Fuzz/Targets/Config.swift).

/// Table headers that made toml++ abort the process are syntax errors.
@Suite struct TOMLGuardTests {
    @Test(arguments: [("[\n", 2), ("[[\n", 3), ("[ =x]\n", 3), ("[[ .a]]\n", 4), ("[[[a]]]\n", 3), ("[#]\n", 2),
                       ("  [\t,]\n", 5), ("[\u{e9}]\n", 2)])
    func abortingHeaderIsASyntaxError(header: String, column: Int) {
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "workers = 1\n" + header)]) == [
            "b.toml: line 2, column \(column): "
                + "TOML syntax error: Error while parsing table header: expected a key after '[', such as [pool] or [[pool.server]]",
        ])
    }

    @Test func aBracketAfterAValueIsNotAHeader() {
        #expect(TOMLGuard.abortingTableHeader(in: "a = \"\u{e9}\u{e9}\" = [\n") == nil)
    }

    @Test(arguments: [
        "[pool]\n[[pool.server]]\n[ \"quoted\" . 'key' ]\n[-_]\n",
        "x = [\n  [1, 2],\n  [\n 3 ],\n]\n",                   // arrays of arrays: lines starting with "[" are values
        "x = { a = [\n[1]\n] }\n",
        "s = \"\"\"\n[\n\"\"\"\nt = '''\n[[\n'''\n",             // multi-line strings holding "[" lines
        "s = \"\"\"a\"\"\"\"\"\n[ok]\n",                        // closing delimiter followed by two more quotes
        "s = \"a\\\"[\"\n# [\n[b] # [\n",                       // escaped quote, comments
        "k = 'x' ]\n",                                          // stray bracket: toml++ reports it itself
        "[",                                                    // end of text: toml++ reports it itself
    ])
    func validOrHarmlessTextPasses(text: String) {
        #expect(TOMLGuard.abortingTableHeader(in: text) == nil)
    }

    @Test func aHeaderRightAfterAByteOrderMarkIsChecked() {
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "\u{FEFF}[`")]) == [
            "b.toml: line 1, column 2: "
                + "TOML syntax error: Error while parsing table header: expected a key after '[', such as [pool] or [[pool.server]]",
        ])
    }

    @Test func aHeaderAfterAMultiLineArrayIsStillChecked() {
        let p = TOMLGuard.abortingTableHeader(in: "x = [\n1,\n]\n[=]\n")
        #expect(p?.line == 4 && p?.column == 2)
    }
}

/// Every error is one line (`weir check` prints one per line), whatever the operator's strings hold.
@Suite struct OneLineErrorTests {
    @Test func tomlSyntaxErrorQuotingALineBreak() {
        let lines = errorLines([("a.toml", baseTOML), ("b.toml", "[global]\nworkers = n\n")])
        #expect(lines.count == 1)
        #expect(lines.allSatisfy { !$0.contains("\n") && !$0.contains("\r") })
        #expect(lines.first?.hasSuffix(#"expected 'nan', saw 'n\n'"#) == true)
    }

    @Test func anEmptyKeyIsShownQuoted() {
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "\"\" = 1\n")]) == [
            #"b.toml: "": unknown top-level key; keys belong inside one of [global], [timeouts], [limits], [admin], [sticky], "#
                + "[discovery], [[listener]], [[pool]], [[route]], [peer], [group], [http2]",
        ])
    }

    @Test func valuesAndKeysWithControlCharactersAreEscaped() {
        let lines = errorLines(appending: "[[listener]]\nname = \"x\"\naddress = \"a\\nb\\r\\u001B\"\n\"k\\n\" = 1\n")
        #expect(!lines.isEmpty)
        #expect(lines.allSatisfy { !$0.contains("\n") && !$0.contains("\r") && !$0.contains("\u{1B}") })
        #expect(lines.contains { $0.contains(#"a\nb\r\u{1B}"#) })
        #expect(lines.contains { $0.contains(#"k\n"#) })
    }
}

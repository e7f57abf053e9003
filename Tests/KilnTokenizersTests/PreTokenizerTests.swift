import Foundation
import KilnFormats
import KilnTestSupport
@testable import KilnTokenizers
import KilnTransformer
import Testing

/// Every `tokenizer.ggml.pre` name llama.cpp knows, against the ids llama.cpp itself produced
/// (tokenizers/pre-tokenizers.json, scripts/record-pre-tokenizers): Qwen 2's byte-level
/// vocabulary and Gemma 4's raw-UTF-8 one, each with its pre name replaced, over a text set of
/// llama.cpp's test inputs and script, digit, whitespace and mark corners.
@Suite struct PreTokenizerTests {
    struct Fixture: Decodable {
        struct Base: Decodable {
            let file: String
            let sha256: String
        }

        struct Group: Decodable {
            let base: String
            /// Null where llama.cpp aborts on the text (a raw space inside a BPE word).
            let ids: [[Int]?]
            let ids_special: [String: [Int]?]
            let names: [String]
        }

        let bases: [String: Base]
        let texts: [String]
        let names: [String]
        let groups: [Group]
    }

    static func fixture() throws -> Fixture {
        try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.url("tokenizers/pre-tokenizers.json")))
    }

    @Test func knowsEveryNameLlamaCppKnows() throws {
        let fixture = try Self.fixture()
        #expect(Set(PreTokenizer.ggufNameList) == Set(fixture.names))
        #expect(throws: TokenizerError.unknownPreTokenizer("mystery")) { try PreTokenizer(ggufName: "mystery") }
    }

    @Test(arguments: ["byte-level", "raw"])
    func matchesLlamaCppOnEveryName(base: String) throws {
        let fixture = try Self.fixture()
        let file = try #require(fixture.bases[base]).file
        let path = Fixtures.url("tokenizers/llama-cpp-vocab").appendingPathComponent(file).path
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("missing \(path) (run scripts/setup)")
            return
        }
        let gguf = try GGUFFile(path: path)
        let baseTokenizer: ByteLevelBPETokenizer = base == "raw"
            ? try #require(try GGUFTokenizer.load(from: gguf, preTokenizerName: "whitespace") as? ByteLevelBPETokenizer)
            : try byteLevelTokenizer(from: gguf)
        var checked = 0
        for group in fixture.groups where group.base == base {
            for name in group.names {
                let tokenizer = baseTokenizer.replacingPreTokenizer(
                    try PreTokenizer(ggufName: name), ignoresMerges: PreTokenizer.ignoresMerges(ggufName: name),
                    escapesWhitespace: PreTokenizer.escapesWhitespace(ggufName: name))
                var failures = 0
                for (i, text) in fixture.texts.enumerated() where failures < 3 {
                    let plain = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
                    let special = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
                    guard let want = group.ids[i] else { continue }
                    let wantSpecial = group.ids_special[String(i)].flatMap { $0 } ?? want
                    if plain != want || special != wantSpecial {
                        failures += 1
                        let pieces = { (ids: [Int]) in ids.map { tokenizer.piece(for: $0) ?? "?" } }
                        Issue.record("""
                            \(name) (\(base)) text \(i) \(text.debugDescription)
                              got  \(pieces(plain)) special \(special == wantSpecial ? "ok" : "\(pieces(special))")
                              want \(pieces(want))
                            """)
                    }
                    if base == "byte-level" && tokenizer.preTokenizer.byteEncoded {  // byte-level BPE loses nothing
                        #expect(try tokenizer.decode(want, skipSpecial: false) == text, "\(name) round trip \(i)")
                    }
                    checked += 1
                }
            }
        }
        #expect(checked > 0)
    }

    /// `\s+$` on a long run of spaces that ends in a symbol backtracks quadratically, in
    /// llama.cpp as in any backtracking engine; the split gives up on such a piece after a
    /// budget linear in its length, so a hostile text cannot stall tokenization.
    @Test func pathologicalBacktrackingIsBounded() throws {
        let pre = try PreTokenizer(ggufName: "deepseek-llm")
        let text = Array((String(repeating: " ", count: 50_000) + "€").unicodeScalars)
        let pieces = pre.split(text)
        #expect(pieces.first?.lowerBound == 0 && pieces.last?.upperBound == text.count)
        #expect(zip(pieces, pieces.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
    }

    @Test func regexFollowsECMAScriptOrder() throws {
        func split(_ pattern: String, _ text: String) throws -> [String] {
            let regex = try PatternRegex(pattern.unicodeScalars.map(\.value), description: pattern)
            let units = text.unicodeScalars.map(\.value)
            var pieces: [Range<Int>] = []
            units.withUnsafeBufferPointer { regex.split($0, 0..<units.count, into: &pieces) }  // within budget
            return pieces.map { String(String.UnicodeScalarView(text.unicodeScalars.map { $0 }[$0])) }
        }
        // Alternatives are tried left to right, not longest first.
        #expect(try split("a|ab", "abab") == ["a", "b", "a", "b"])
        // Greedy and lazy quantifiers, bounded repeats, text between matches kept.
        #expect(try split("x{2,3}", "xxxxxxx") == ["xxx", "xxx", "x"])
        #expect(try split("x+?", "xxx") == ["x", "x", "x"])
        // Lookahead: \s+(?!\S) leaves the last space to the word.
        #expect(try split(#"\s+(?!\S)|\w+"#, "a   b") == ["a", "  ", " ", "b"])
        // An empty match splits between characters (std::regex_iterator's retry rule).
        #expect(try split(#"(?=(\d{3})+(?!\d))"#, "1234567") == ["1", "234", "567"])
        #expect(try split(#"[^a-c\]x-]+"#, "ab]d-e") == ["ab]", "d", "-", "e"])
        #expect(try split(#"\s+$"#, "a  b  ") == ["a  b", "  "])
        #expect(throws: PatternRegexError.self) { try PatternRegex(Array("(a".unicodeScalars.map(\.value)), description: "(a") }
        #expect(throws: PatternRegexError.self) { try PatternRegex(Array("(a*)*".unicodeScalars.map(\.value)), description: "(a*)*") }
        #expect(throws: PatternRegexError.self) { try PatternRegex(Array("[b-a]".unicodeScalars.map(\.value)), description: "[b-a]") }
    }
}

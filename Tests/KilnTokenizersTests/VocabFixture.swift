import Foundation
import KilnFormats
import KilnTestSupport
import KilnTokenizers
import Testing

/// One of llama.cpp's vocab test files (fixtures/tokenizers/llama-cpp-vocab/*.json).
struct VocabFixture: Decodable {
    struct Case: Decodable {
        let text: String
        let ids: [Int]
        /// With special parsing on, where recorded.
        let ids_special: [Int]?
    }

    let vocab_file: String
    let cases: [Case]

    /// Loads ggml-vocab-NAME.json and its GGUF, builds the tokenizer with `make`, and checks
    /// every case's ids (add_special and parse_special off, as test-tokenizer-0 runs them);
    /// `roundTrip` also checks that decoding the expected ids gives the text back.
    static func check<T: Tokenizer>(_ name: String, roundTrip: Bool, _ make: (GGUFFile) throws -> T) throws {
        let directory = Fixtures.url("tokenizers/llama-cpp-vocab")
        let fixtureURL = directory.appendingPathComponent("ggml-vocab-\(name).json")
        guard FileManager.default.fileExists(atPath: fixtureURL.path) else {
            Issue.record("missing fixture \(fixtureURL.path)")
            return
        }
        let fixture = try JSONDecoder().decode(VocabFixture.self, from: Data(contentsOf: fixtureURL))
        let tokenizer = try make(try GGUFFile(path: directory.appendingPathComponent(fixture.vocab_file).path))
        // A vocabulary that spells spaces `▁` (raw UTF-8, Gemma 4) decodes a literal `▁` as a space.
        let spellsSpaces = (try? tokenizer.decode(tokenizer.encode("\u{2581}", addSpecial: false, parseSpecial: false), skipSpecial: true)) == " "
        var failures = 0
        for c in fixture.cases where failures <= 5 {
            let ids = tokenizer.encode(c.text, addSpecial: false, parseSpecial: false)
            if ids != c.ids {
                failures += 1
                let got = ids.map { tokenizer.piece(for: $0) ?? "?" }, want = c.ids.map { tokenizer.piece(for: $0) ?? "?" }
                Issue.record("\(name): \(c.text.debugDescription)\n  got  \(got)\n  want \(want)")
            }
            if let special = c.ids_special {
                #expect(tokenizer.encode(c.text, addSpecial: false, parseSpecial: true) == special, "\(name) special \(c.text.debugDescription)")
            }
            if roundTrip && !(spellsSpaces && c.text.contains("\u{2581}")) {
                #expect(try tokenizer.decode(c.ids, skipSpecial: true) == c.text, "\(name) round trip \(c.text.debugDescription)")
            }
        }
    }
}

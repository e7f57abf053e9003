import Foundation
import KilnFormats
import KilnTestSupport
@testable import KilnTokenizers
import KilnTransformer
import Testing

/// Vocabulary kinds llama.cpp's test files carry no example of, against llama.cpp on small
/// vocabularies Kiln writes (tokenizers/rwkv/, tokenizers/plamo2/; scripts/make-rwkv-vocab,
/// scripts/make-plamo2-vocab): the 78 texts of the pre-tokenizer set.
@Suite struct KilnVocabularyTests {
    @Test(arguments: ["rwkv", "plamo2"])
    func matchesLlamaCpp(kind: String) throws {
        let directory = Fixtures.url("tokenizers/\(kind)")
        let fixture = try JSONDecoder().decode(
            VocabFixture.self, from: Data(contentsOf: directory.appendingPathComponent("ggml-vocab-\(kind)-test.json")))
        let tokenizer = try GGUFTokenizer.load(from: try GGUFFile(path: directory.appendingPathComponent(fixture.vocab_file).path))
        #expect(kind == "rwkv" ? tokenizer is RWKVTokenizer : tokenizer is PLaMo2Tokenizer)
        for c in fixture.cases {
            let ids = tokenizer.encode(c.text, addSpecial: false, parseSpecial: false)
            #expect(ids == c.ids, "\(kind) \(c.text.debugDescription)\n got  \(ids.map { tokenizer.piece(for: $0) ?? "?" })\n want \(c.ids.map { tokenizer.piece(for: $0) ?? "?" })")
            if let special = c.ids_special {
                #expect(tokenizer.encode(c.text, addSpecial: false, parseSpecial: true) == special, "\(kind) special \(c.text.debugDescription)")
            }
            // Both spell every byte, so nothing is lost (PLaMo 2 drops a leading byte-order mark).
            let text = kind == "plamo2" && c.text.hasPrefix("\u{FEFF}") ? String(c.text.dropFirst()) : c.text
            #expect(try tokenizer.decode(c.ids, skipSpecial: false) == text, "\(kind) round trip \(c.text.debugDescription)")
        }
    }

    @Test func unescapesRWKVPiecesAsLlamaCppReadsThem() {
        #expect(RWKVTokenizer.unescape(#"a\n\t\r\x41\xe4\\b"#) == [0x61, 10, 9, 13, 0x41, 0xE4, 0x5C, 0x62])
    }

    @Test func plamo2NeedsEveryByteToken() {
        #expect(throws: TokenizerError.self) {
            try PLaMo2Tokenizer(tokens: ["<unk>", "a"], scores: [0, -1], kinds: [.unknown, .normal])
        }
        // A score whose scaled integer does not fit is an error, not a trap.
        let bytes = (0..<256).map { String(format: "<0x%02X>", $0) }
        #expect(throws: TokenizerError.self) {
            try PLaMo2Tokenizer(tokens: ["<unk>"] + bytes + ["a"], scores: [0] + [Float](repeating: 0, count: 256) + [-1e30],
                                kinds: [.unknown] + [TokenKind](repeating: .byte, count: 256) + [.normal])
        }
    }
}

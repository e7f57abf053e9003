import Foundation
import KilnFormats
import KilnTestSupport
@testable import KilnTokenizers
import KilnTransformer
import Testing

/// RWKV vocabularies (GGUF `rwkv`) against llama.cpp on Kiln's own small world-style vocabulary
/// (tokenizers/rwkv/, scripts/make-rwkv-vocab): the 78 texts of the pre-tokenizer set.
@Suite struct RWKVTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            let text: String
            let ids: [Int]
        }

        let vocab_file: String
        let cases: [Case]
    }

    @Test func matchesLlamaCpp() throws {
        let directory = Fixtures.url("tokenizers/rwkv")
        let fixture = try JSONDecoder().decode(
            Fixture.self, from: Data(contentsOf: directory.appendingPathComponent("ggml-vocab-rwkv-test.json")))
        let file = try GGUFFile(path: directory.appendingPathComponent(fixture.vocab_file).path)
        let tokenizer = try #require(try GGUFTokenizer.load(from: file) as? RWKVTokenizer)
        for c in fixture.cases {
            #expect(tokenizer.encode(c.text, addSpecial: false, parseSpecial: false) == c.ids, "\(c.text.debugDescription)")
            #expect(try tokenizer.decode(c.ids, skipSpecial: false) == c.text, "round trip \(c.text.debugDescription)")
        }
    }

    @Test func unescapesPiecesAsLlamaCppReadsThem() {
        #expect(RWKVTokenizer.unescape(#"a\n\t\r\x41\xe4\\b"#) == [0x61, 10, 9, 13, 0x41, 0xE4, 0x5C, 0x62])
    }
}

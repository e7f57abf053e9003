import Foundation
import KilnTestSupport
import KilnTokenizers
import Testing

/// A model's tokenization cases as llama.cpp recorded them (llm/tokenization.json,
/// gemma3/tokenization.json): ids with special-token parsing on and off, and the text the ids
/// decode to with control tokens kept and dropped.
enum LlamaCppTokenization {
    struct Case: Decodable {
        let id: String
        let text: String
        let ids: [Int]
        let ids_no_special: [Int]
        let detok: String
        let detok_drop_special: String
    }

    struct Fixture: Decodable { let cases: [Case] }

    static func expectMatches(_ tokenizer: any Tokenizer, fixture path: String) throws {
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.url(path)))
        for c in fixture.cases {
            #expect(tokenizer.encode(c.text, addSpecial: false, parseSpecial: true) == c.ids, "\(c.id) special")
            #expect(tokenizer.encode(c.text, addSpecial: false, parseSpecial: false) == c.ids_no_special, "\(c.id) plain")
            #expect(try tokenizer.decode(c.ids, skipSpecial: false) == c.detok, "\(c.id) detok")
            #expect(try tokenizer.decode(c.ids, skipSpecial: true) == c.detok_drop_special, "\(c.id) detok drop")
        }
    }
}

import Foundation
import KilnFormats
import KilnTestSupport
import KilnTokenizers
import Testing

/// WordPiece from a Hugging Face tokenizer.json (all-MiniLM-L6-v2, against the ids
/// sentence-transformers produced) and from a GGUF (llama.cpp's BERT vocab tests).
@Suite struct WordPieceTests {
    struct Item: Decodable {
        let id: String
        let text: String
        let input_ids: [Int]
    }

    struct Fixture: Decodable {
        let items: [Item]
    }

    /// all-MiniLM-L6-v2's tokenizer.json, which scripts/setup fetches (nil, and an issue in CI, without it).
    static func miniLM() throws -> WordPieceTokenizer? {
        let path = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/all-MiniLM-L6-v2/tokenizer.json")
        guard FileManager.default.fileExists(atPath: path.path) else {
            if Fixtures.isCI { Issue.record("model file missing: \(path.path) (run scripts/setup)") }
            return nil
        }
        return try #require(try TokenizerJSON.load(contentsOf: path) as? WordPieceTokenizer)
    }

    @Test func miniLMMatchesSentenceTransformers() throws {
        guard let tokenizer = try Self.miniLM() else { return }
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.url("embeddings/embeddings.json")))
        #expect(fixture.items.count == 100)
        for item in fixture.items {
            // sentence-transformers truncates at max_seq_length 256, [CLS] and [SEP] included.
            let ids = tokenizer.encode(item.text, addSpecial: true, parseSpecial: false, maximumLength: 256)
            #expect(ids == item.input_ids, "\(item.id): \(item.text.prefix(60).debugDescription)")
        }
        let ids = tokenizer.encode("Crème brûlée, isn't it?", addSpecial: true, parseSpecial: false)
        #expect(try tokenizer.decode(ids, skipSpecial: true) == "creme brulee, isn't it?")
    }

    /// Every Unicode White_Space character separates words and every control or format character
    /// disappears, as Hugging Face's BERT normalizer and pre-tokenizer decide: "hello", U+2028,
    /// "world" is two words, not one [UNK] (Tests/Fixtures/tokenizers/wordpiece-whitespace.json,
    /// recorded by scripts/record-wordpiece-whitespace with the tokenizers package).
    @Test func whitespaceAndControlCharactersMatchHuggingFace() throws {
        struct Case: Decodable { let code_point: UInt32; let category: String; let text: String; let ids: [Int] }
        struct Record: Decodable { let cases: [Case] }
        guard let tokenizer = try Self.miniLM() else { return }
        let record = try JSONDecoder().decode(Record.self, from: Data(contentsOf: Fixtures.url("tokenizers/wordpiece-whitespace.json")))
        #expect(record.cases.count == 96)
        for c in record.cases {
            let ids = tokenizer.encode(c.text, addSpecial: true, parseSpecial: false)
            #expect(ids == c.ids, "U+\(String(c.code_point, radix: 16, uppercase: true)) (\(c.category))")
        }
    }

    @Test func bertGGUFMatchesLlamaCpp() throws {
        try VocabFixture.check("bert-bge", roundTrip: false, wordPieceTokenizer)
        let directory = Fixtures.url("tokenizers/llama-cpp-vocab")
        let tokenizer = try wordPieceTokenizer(from: try GGUFFile(path: directory.appendingPathComponent("ggml-vocab-bert-bge.gguf").path))
        #expect(tokenizer.encode("Hello", addSpecial: true, parseSpecial: false).first == 101)
    }

    @Test func unsupportedComponentsAreNamed() {
        let unigram = Data(#"{"model": {"type": "Unigram", "vocab": []}}"#.utf8)
        #expect { _ = try TokenizerJSON.load(unigram) } throws: { "\($0)".contains("Unigram") }
        let normalizer = Data(#"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}, "normalizer": {"type": "NFKC"}}"#.utf8)
        #expect { _ = try TokenizerJSON.load(normalizer) } throws: { "\($0)".contains("NFKC") }
        #expect { _ = try TokenizerJSON.load(Data("not json".utf8)) } throws: { "\($0)".contains("does not parse") }
    }
}

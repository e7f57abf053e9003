import Foundation
import KilnFormats
import KilnTestSupport
import KilnTokenizers
import Testing

/// A byte-level BPE tokenizer.json, written here from SmolLM2's GGUF vocabulary the way Hugging
/// Face stores it (vocab map, merges, Digits + ByteLevel pre-tokenizers, added special tokens),
/// must tokenize exactly as llama.cpp does on the SmolLM2 fixtures.
@Suite struct TokenizerJSONBPETests {
    struct Case: Decodable {
        let id: String
        let text: String
        let ids: [Int]
        let ids_no_special: [Int]
    }

    struct Fixture: Decodable { let cases: [Case] }

    @Test(arguments: [false, true]) func smolLM2AsTokenizerJSON(mergesAsPairs: Bool) throws {
        let model = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: model) else {
            if Fixtures.isCI { Issue.record("model file missing: \(model) (run scripts/setup)") }
            return
        }
        let file = try GGUFFile(path: model)
        let tokens = try file.strings("tokenizer.ggml.tokens")
        let types = try #require(try file.array("tokenizer.ggml.token_type").integers)
        let merges = try file.strings("tokenizer.ggml.merges")
        var vocab: [String: Int] = [:]
        for (id, token) in tokens.enumerated() where vocab[token] == nil { vocab[token] = id }
        let json: [String: Any] = [
            "model": [
                "type": "BPE", "vocab": vocab,
                "merges": mergesAsPairs ? merges.map { $0.split(separator: " ").map(String.init) } as Any : merges as Any,
            ],
            "pre_tokenizer": [
                "type": "Sequence",
                "pretokenizers": [["type": "Digits", "individual_digits": true],
                                  ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true]],
            ],
            "post_processor": ["type": "ByteLevel"],
            "added_tokens": types.enumerated().filter { $0.element == 3 }.map { ["id": $0.offset, "content": tokens[$0.offset], "special": true] },
        ]
        let tokenizer = try TokenizerJSON.load(JSONSerialization.data(withJSONObject: json))
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.url("llm/tokenization.json")))
        for c in fixture.cases {
            #expect(tokenizer.encode(c.text, addSpecial: false, parseSpecial: true) == c.ids, "\(c.id)")
            #expect(tokenizer.encode(c.text, addSpecial: false, parseSpecial: false) == c.ids_no_special, "\(c.id) plain")
        }
    }

    @Test func unknownPreTokenizerPatternIsNamed() {
        let json = #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\d+"}, "behavior": "Isolated"}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}}"#
        #expect { _ = try TokenizerJSON.load(Data(json.utf8)) } throws: { "\($0)".contains(#"\d+"#) }
    }
}

import Foundation
import KilnFormats
import KilnTestSupport
@testable import KilnTokenizers
import Testing

/// Byte-level BPE against llama.cpp's own tokenizer test suite (every case of the GPT-2, Llama 3,
/// Qwen 2 and StarCoder vocabularies) and against SmolLM2 as llama.cpp tokenizes it.
@Suite struct ByteLevelBPETests {
    @Test(arguments: ["gpt-2", "llama-bpe", "qwen2", "starcoder", "command-r", "deepseek-coder", "deepseek-llm", "falcon", "mpt", "qwen35", "refact", "gemma-4"])
    func matchesLlamaCppVocabularyTests(name: String) throws {
        // Byte-level BPE is lossless: the ids give the text back exactly.
        try VocabFixture.check(name, roundTrip: true, byteLevelTokenizer)
    }

    @Test func matchesSmolLM2AsLlamaCppTokenizesIt() throws {
        let model = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: model) else {
            if Fixtures.isCI { Issue.record("model file missing: \(model) (run scripts/setup)") }
            return
        }
        let tokenizer = try byteLevelTokenizer(from: try GGUFFile(path: model))
        #expect(tokenizer.preTokenizer == .digitsThenGPT2)
        #expect(tokenizer.specialTokens.endOfGeneration == [0, 2, 4])  // as llama.cpp reports for this file
        #expect(tokenizer.specialTokens.bos == 1 && tokenizer.specialTokens.eos == 2 && !tokenizer.addsBOS)
        try LlamaCppTokenization.expectMatches(tokenizer, fixture: "llm/tokenization.json")
    }

    /// One tokenizer serves many threads: concurrent encodes equal the sequential ones.
    @Test func concurrentUseGivesTheSameIds() async throws {
        let directory = Fixtures.url("tokenizers/llama-cpp-vocab")
        let tokenizer = try byteLevelTokenizer(from: try GGUFFile(path: directory.appendingPathComponent("ggml-vocab-gpt-2.gguf").path))
        let texts = (0..<64).map { "Line \($0): the kiln's glaze melts at 1,2\($0)0°C — 陶器 🦙" }
        let sequential = texts.map { tokenizer.encode($0, addSpecial: false, parseSpecial: false) }
        let concurrent = await withTaskGroup(of: (Int, [Int]).self) { group in
            for (i, text) in texts.enumerated() { group.addTask { (i, tokenizer.encode(text, addSpecial: false, parseSpecial: false)) } }
            var results = [[Int]](repeating: [], count: texts.count)
            for await (i, ids) in group { results[i] = ids }
            return results
        }
        #expect(concurrent == sequential)
    }

    @Test func byteLevelMappingByHand() {
        #expect(ByteLevel.encode(Array(" a\n".utf8)) == "Ġa\u{010A}")
        #expect(ByteLevel.decode("Ġa\u{010A}") == Array(" a\n".utf8))
        #expect(ByteLevel.encode(Array("€".utf8)) == "âĤ¬")  // E2 82 AC; 0x82 is shifted to U+0124
        // Every byte maps to a distinct character and back.
        let all = (0...255).map(UInt8.init)
        #expect(ByteLevel.decode(ByteLevel.encode(all)) == all)
    }

    @Test func preTokenizerSplitsByHand() {
        func split(_ text: String, _ p: PreTokenizer) -> [String] {
            let scalars = Array(text.unicodeScalars)
            return p.split(scalars).map { String(String.UnicodeScalarView(scalars[$0])) }
        }
        #expect(split("Hello  world's 123!!\n", .gpt2) == ["Hello", " ", " world", "'s", " 123", "!!", "\n"])
        #expect(split("a 123", .digitsThenGPT2) == ["a", " ", "1", "2", "3"])
        #expect(split("I'VE 12345 (ok)\n\n x", .llama3) == ["I", "'VE", " ", "123", "45", " (", "ok", ")\n\n", " x"])
        #expect(split("12345", .qwen2) == ["1", "2", "3", "4", "5"])
    }

    @Test func rejectsBadVocabularies() {
        #expect(throws: TokenizerError.invalidVocabulary("no tokens")) {
            try ByteLevelBPETokenizer(tokens: [], merges: [], preTokenizer: .gpt2)
        }
        #expect(throws: TokenizerError.self) {
            try ByteLevelBPETokenizer(tokens: ["a"], merges: ["a"], preTokenizer: .gpt2)
        }
        #expect(throws: TokenizerError.self) {
            try ByteLevelBPETokenizer(tokens: ["a"], merges: [], preTokenizer: .gpt2, specialTokens: SpecialTokens(eos: 7))
        }
        #expect(throws: TokenizerError.unknownPreTokenizer("mystery")) { try PreTokenizer(ggufName: "mystery") }
    }
}

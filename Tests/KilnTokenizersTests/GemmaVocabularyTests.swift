import Foundation
import KilnFormats
import KilnTestSupport
import KilnTokenizers
import KilnTransformer
import Testing

/// Gemma 3's 262,144-token SentencePiece-style vocabulary, loaded from its GGUF (no space prefix,
/// byte fallback), against llama.cpp's tokenization of 54 texts.
@Suite struct GemmaVocabularyTests {
    @Test func matchesGemma3AsLlamaCppTokenizesIt() throws {
        let model = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/gemma-3-270m-q4_k_m.gguf").path
        guard FileManager.default.fileExists(atPath: model) else {
            if Fixtures.isCI { Issue.record("model file missing: \(model) (run scripts/setup)") }
            return
        }
        let tokenizer = try GGUFTokenizer.load(from: try GGUFFile(path: model))
        #expect(tokenizer.specialTokens.bos == 2 && tokenizer.specialTokens.eos == 1)
        #expect(tokenizer.encode("Hi", addSpecial: true, parseSpecial: false).first == 2)  // add_bos_token
        #expect(tokenizer.specialTokens.endOfGeneration == [1, 106, 212])  // as llama.cpp reports for this file
        try LlamaCppTokenization.expectMatches(tokenizer, fixture: "gemma3/tokenization.json")
    }
}

import Foundation
import KilnFormats
import KilnTestSupport
import KilnTokenizers
import Testing

/// SentencePiece-style BPE against llama.cpp's vocab tests for Llama (SPM) and Phi-3.
@Suite struct ScoredBPETests {
    @Test(arguments: ["llama-spm", "phi-3"]) func matchesLlamaCppVocabularyTests(name: String) throws {
        try VocabFixture.check(name, roundTrip: true, scoredTokenizer)
        let directory = Fixtures.url("tokenizers/llama-cpp-vocab")
        let tokenizer = try scoredTokenizer(from: try GGUFFile(path: directory.appendingPathComponent("ggml-vocab-\(name).gguf").path))
        #expect(tokenizer.encode("", addSpecial: true, parseSpecial: false) == [1])
    }

    @Test func mergesByScoreByHand() throws {
        // "ab" outscores "bc": "abc" → ["▁", "ab", "c"]; "xyz" falls back to bytes.
        let tokens = ["<unk>", "▁", "a", "b", "c", "ab", "bc", "<0x78>", "<0x79>", "<0x7A>"]
        let scores: [Float] = [0, -1, -1, -1, -1, -2, -3, 0, 0, 0]
        let kinds: [TokenKind] = [.unknown, .normal, .normal, .normal, .normal, .normal, .normal, .byte, .byte, .byte]
        let t = try ScoredBPETokenizer(tokens: tokens, scores: scores, kinds: kinds, specialTokens: SpecialTokens(unknown: 0))
        #expect(t.encode("abc", addSpecial: false, parseSpecial: false) == [1, 5, 4])
        #expect(t.encode("xyz", addSpecial: false, parseSpecial: false) == [1, 7, 8, 9])
        #expect(try t.decode([1, 5, 4, 7, 8, 9], skipSpecial: true) == "abcxyz")
    }
}

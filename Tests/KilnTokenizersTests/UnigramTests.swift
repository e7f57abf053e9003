import Foundation
import KilnFormats
import KilnTestSupport
import KilnTokenizers
import KilnTransformer
import Testing

/// SentencePiece Unigram (GGUF `t5`) against llama.cpp on nomic-bert-moe's vocabulary (250,048
/// pieces and a precompiled charsmap): the 78 texts of the pre-tokenizer set, ids as llama.cpp
/// recorded them.
@Suite struct UnigramTests {
    @Test func matchesLlamaCppOnNomicBertMoE() throws {
        // Unigram with a charsmap is not lossless (NFKC folds characters), so no round trip.
        try VocabFixture.check("nomic-bert-moe", roundTrip: false) { file in
            try #require(try GGUFTokenizer.load(from: file) as? UnigramTokenizer)
        }
    }

    @Test func badCharsmapIsAnError() {
        let tokens = ["<pad>", "</s>", "<unk>", "\u{2581}a"]
        #expect(throws: TokenizerError.self) {
            try UnigramTokenizer(tokens: tokens, scores: [0, 0, 0, -1], precompiledCharsmap: [9, 0, 0, 0, 1],
                                 specialTokens: SpecialTokens(unknown: 2))
        }
        #expect(throws: TokenizerError.self) {
            try UnigramTokenizer(tokens: tokens, scores: [0, 0], precompiledCharsmap: nil, specialTokens: SpecialTokens(unknown: 2))
        }
    }

    @Test func viterbiPrefersTheHigherTotalScoreByHand() throws {
        // "▁ab" as one piece (-5) loses to "▁a" + "b" (-1 + -1); unknown characters collapse.
        let tokens = ["<pad>", "</s>", "<unk>", "\u{2581}ab", "\u{2581}a", "b", "\u{2581}"]
        let t = try UnigramTokenizer(tokens: tokens, scores: [0, 0, 0, -5, -1, -1, -2], precompiledCharsmap: nil,
                                     specialTokens: SpecialTokens(unknown: 2))
        #expect(t.encode("ab", addSpecial: false, parseSpecial: false) == [4, 5])
        #expect(t.encode("ab zz", addSpecial: false, parseSpecial: false) == [4, 5, 6, 2])
    }
}

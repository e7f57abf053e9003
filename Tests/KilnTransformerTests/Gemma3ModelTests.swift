import Foundation
import KilnFormats
import KilnKernels
import KilnTestSupport
import KilnTransformer
import Testing

/// Gemma 3 270M (Q4_K_M) against llama.cpp on the same file: sliding-window attention on five of
/// every six layers, RMS-normalized query and key heads, post-norms, the GELU-tanh gate, embeddings
/// × √640 (its vocabulary: KilnTokenizersTests/GemmaVocabularyTests).
@Suite struct Gemma3ModelTests {
    static let modelPath = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/gemma-3-270m-q4_k_m.gguf").path

    static func model() throws -> DecoderSequence? {
        try LlamaCppRecording.model(at: modelPath, contextSize: 512, batchSize: 512)
    }

    @Test func configurationFollowsTheFile() throws {
        guard let model = try Self.model() else { return }
        let c = model.configuration
        #expect(c.architecture == .gemma3 && c.layerCount == 18 && c.headDimension == 256 && c.kvHeadCount == 1)
        // Window 512 on every layer but 5, 11 and 17; those keep the file's base, the others 10,000.
        #expect(c.layerWindows.enumerated().allSatisfy { ($0.offset % 6 == 5) == ($0.element == nil) })
        #expect(c.layerWindows.compactMap { $0 }.allSatisfy { $0 == 512 })
        #expect(c.ropeTheta(layer: 5) == 1_000_000 && c.ropeTheta(layer: 0) == 10_000)
        #expect(c.attentionScale == 1 / 16 && c.attentionSoftCap == nil && c.finalLogitSoftCap == nil)
    }

    @Test(arguments: ["s-logits-01", "s-logits-02"]) func lastPositionLogitsMatchLlamaCpp(name: String) throws {
        guard let model = try Self.model() else { return }
        try LlamaCppRecording.expectLogits(of: model, directory: Fixtures.url("gemma3/logits"), name: name)
    }

    @Test func greedyContinuationsMatchLlamaCpp() throws {
        guard let model = try Self.model() else { return }
        try LlamaCppRecording.expectGreedy(of: model, fixture: Fixtures.url("gemma3/greedy.json"))
    }
}

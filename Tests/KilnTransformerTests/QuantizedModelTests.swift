import Foundation
import KilnFormats
import KilnKernels
import KilnTestSupport
import KilnTransformer
import Testing

/// SmolLM2 quantized by Kiln into every recorded type, against llama.cpp (`Tests/Fixtures/quants/`):
/// `ModelQuantizer` (kiln quantize --allow-requantize) writes the very file llama-quantize wrote
/// (same sha256), and on it the last-position logits are llama.cpp's floats and the greedy
/// continuations its ids.
@Suite struct QuantizedModelTests {
    struct Greedy: Decodable {
        let id: String
        let prompt_ids: [Int]
        let generated_ids: [Int]
    }

    struct Logits: Decodable {
        let prompt_ids: [Int]
        let file: String
        let argmax: Int
    }

    struct Fixture: Decodable {
        let type: String
        let file_size: Int
        let file_sha256: String
        let tensor_type_counts: [String: Int]
        let greedy: [Greedy]
        let logits: Logits
    }

    /// Every type llama.cpp's quantizer was recorded on.
    static let types = ["F16", "BF16", "Q4_0", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M", "Q4_K_S", "Q4_K_M", "Q5_K_M",
                        "Q6_K", "IQ4_NL", "IQ4_XS"]

    static var sourceModel: String {
        Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/SmolLM2-135M-Instruct.Q4_1.gguf").path
    }

    /// SmolLM2 quantized into `type` by Kiln, in a temporary directory the caller removes.
    static func quantized(_ type: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: sourceModel) else {
            if Fixtures.isCI { Issue.record("missing \(sourceModel) (run scripts/setup)") }
            return nil
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-quant-\(getpid())-\(type)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("model.gguf").path
        try ModelQuantizer.quantize(input: sourceModel, output: path,
                                    options: .init(scheme: QuantizationScheme.named(type)!, allowRequantize: true))
        return path
    }

    /// The prompt runs as one batch, as llama.cpp's n_batch 512 does: its kernels group tokens by
    /// the batch (repacked weights in fours, the tiled K-quant kernel from eight).
    @Test(arguments: types) func quantizedFileLogitsAndGreedyMatchLlamaCpp(type: String) throws {
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.url("quants/quant-\(type).json")))
        guard let path = try Self.quantized(type) else { return }
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path) }
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) == fixture.file_size)
        #expect(try SHA256Digest.hex(ofFile: path) == fixture.file_sha256, "\(type): Kiln's file differs from llama-quantize's")
        let model = try Self.expectTypesAndLogits(path: path, label: type, typeCounts: fixture.tensor_type_counts,
                                                  prompt: fixture.logits.prompt_ids,
                                                  logits: Fixtures.url("quants/\(fixture.logits.file)"), argmax: fixture.logits.argmax)
        for c in fixture.greedy {
            let generated = try LlamaCppRecording.greedy(model, prompt: c.prompt_ids, steps: c.generated_ids.count)
            let split = generated.indices.first { generated[$0] != c.generated_ids[$0] }
            #expect(split == nil, "\(c.id): differs from llama.cpp at step \(split ?? -1)")
        }
    }

    /// The file at `path` has llama.cpp's tensor types, and on it the last-position logits of
    /// `prompt` (one batch of up to 512, as llama.cpp's n_batch) are llama.cpp's floats, bit for bit.
    static func expectTypesAndLogits(path: String, label: String, typeCounts: [String: Int], prompt: [Int], logits url: URL,
                                     argmax: Int) throws -> DecoderSequence {
        let file = try GGUFFile(path: path)
        var counts: [String: Int] = [:]
        for t in file.tensors { counts[t.type.description, default: 0] += 1 }
        #expect(counts == typeCounts, "\(label): tensor types")
        let model = try DecoderSequence(file: file, contextSize: 512, batchSize: 512)
        let expected = try Data(contentsOf: url).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        try model.forward(prompt, startPosition: 0)
        let logits = Array(model.logits)
        let differing = zip(logits, expected).filter { $0.bitPattern != $1.bitPattern }.count
        let worst = zip(logits, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(differing == 0, "\(label): \(differing) of \(logits.count) logits differ, by up to \(worst)")
        #expect(VectorOps.argmax(UnsafeBufferPointer(model.logits), count: logits.count) == argmax)
        return model
    }
}

import Foundation
import KilnFormats
import KilnKernels
import KilnTestSupport
import KilnTransformer
import Testing

/// SmolLM2 requantized into every common type, against llama.cpp on each file
/// (`Tests/Fixtures/quants/`): the file is the one llama.cpp's quantizer wrote (same size and
/// sha256), the last-position logits are the same floats and the greedy continuations the same ids.
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

    /// Every recorded type but F16 and BF16, whose products (llama.cpp runs them through tinyBLAS on
    /// f16/bf16 activations) Kiln does not have yet: their files stop at the first such tensor.
    static let types = ["Q4_0", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M", "Q4_K_S", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"]

    /// Where the requantized files are: `Checkpoints/quants/SmolLM2-135M-Instruct.TYPE.gguf`, written
    /// by `scripts/requantize-smollm2` (llama.cpp's quantizer, sha256-checked against the fixtures).
    /// The prompt runs as one batch, as llama.cpp's n_batch 512 does: its kernels group tokens by
    /// the batch (repacked weights in fours, the tiled K-quant kernel from eight).
    static func modelPath(_ type: String) -> String {
        Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/quants/SmolLM2-135M-Instruct.\(type).gguf").path
    }

    @Test(arguments: types) func logitsAndGreedyMatchLlamaCpp(type: String) throws {
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.url("quants/quant-\(type).json")))
        let path = Self.modelPath(type)
        guard FileManager.default.fileExists(atPath: path) else {
            if Fixtures.isCI { Issue.record("missing \(path) (run scripts/requantize-smollm2)") }
            return
        }
        let file = try GGUFFile(path: path)
        #expect((try FileManager.default.attributesOfItem(atPath: URL(fileURLWithPath: path).resolvingSymlinksInPath().path)[.size] as? Int) == fixture.file_size)
        var counts: [String: Int] = [:]
        for t in file.tensors { counts[t.type.description, default: 0] += 1 }
        #expect(counts == fixture.tensor_type_counts)

        let model = try LlamaModel(file: file, contextSize: 512, batchSize: 512)
        let expected = try Data(contentsOf: Fixtures.url("quants/\(fixture.logits.file)")).withUnsafeBytes {
            Array($0.bindMemory(to: Float.self))
        }
        try model.forward(fixture.logits.prompt_ids, startPosition: 0)
        let logits = Array(model.logits)
        let differing = zip(logits, expected).filter { $0.bitPattern != $1.bitPattern }.count
        let worst = zip(logits, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(differing == 0, "\(type): \(differing) of \(logits.count) logits differ, by up to \(worst)")
        #expect(VectorOps.argmax(UnsafeBufferPointer(model.logits), count: logits.count) == fixture.logits.argmax)

        for c in fixture.greedy {
            let generated = try LlamaModelTests.greedy(model, prompt: c.prompt_ids, steps: c.generated_ids.count)
            let split = generated.indices.first { generated[$0] != c.generated_ids[$0] }
            #expect(split == nil, "\(c.id): differs from llama.cpp at step \(split ?? -1)")
        }
    }
}

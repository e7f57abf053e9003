import Foundation
import KilnFormats
import KilnKernels
import KilnTestSupport
import KilnTransformer
import Testing

/// The tiny Llama, whose rows are all multiples of 256, against llama.cpp (Tests/Fixtures/tiny/):
/// Kiln rebuilds the F32 file the script wrote, quantizes it into all 18 types into llama.cpp's
/// very files, and on each reproduces llama.cpp's logits bit for bit and its 16 greedy tokens.
@Suite struct TinyModelTests {
    struct Record: Decodable {
        struct Entry: Decodable {
            let file_sha256: String
            let tensor_type_counts: [String: Int]
            let prompt_ids: [Int]
            let logits: String
            let argmax: Int
            let greedy: [Int]
        }
        let base_sha256: String
        let types: [String: Entry]
    }

    static let record = try! JSONDecoder().decode(Record.self, from: Data(contentsOf: Fixtures.url("tiny/tiny-llama.json")))
    static let types = record.types.keys.filter { $0 != "F32" }.sorted()

    /// The F32 base, written once per test process.
    static let base: String? = {
        guard FileManager.default.fileExists(atPath: TinyLlama.vocabularyPath) else { return nil }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tiny-\(getpid()).F32.gguf").path
        do { try TinyLlama.write(to: path) } catch { return nil }
        return path
    }()

    static func available() -> String? {
        if base == nil, Fixtures.isCI { Issue.record("missing \(TinyLlama.vocabularyPath) (run scripts/setup)") }
        return base
    }

    @Test func baseModelIsTheScriptsFile() throws {
        guard let base = Self.available() else { return }
        #expect(try SHA256Digest.hex(ofFile: base) == Self.record.base_sha256)
    }

    @Test(arguments: types) func quantizedFileLogitsAndGreedyMatchLlamaCpp(type: String) throws {
        guard let base = Self.available() else { return }
        let entry = Self.record.types[type]!
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tiny-\(getpid()).\(type).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ModelQuantizer.quantize(input: base, output: path, options: .init(scheme: QuantizationScheme.named(type)!))
        #expect(try SHA256Digest.hex(ofFile: path) == entry.file_sha256, "\(type): Kiln's file differs from llama-quantize's")
        let file = try GGUFFile(path: path)
        var counts: [String: Int] = [:]
        for t in file.tensors { counts[t.type.description, default: 0] += 1 }
        #expect(counts == entry.tensor_type_counts)

        let model = try LlamaModel(file: file, contextSize: 512, batchSize: 512)
        let expected = try Data(contentsOf: Fixtures.url("tiny/\(entry.logits)")).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        try model.forward(entry.prompt_ids, startPosition: 0)
        let logits = Array(model.logits)
        let differing = zip(logits, expected).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(type): \(differing) of \(logits.count) logits differ")
        #expect(VectorOps.argmax(UnsafeBufferPointer(model.logits), count: logits.count) == entry.argmax)
        let generated = try LlamaModelTests.greedy(model, prompt: entry.prompt_ids, steps: entry.greedy.count)
        let split = generated.indices.first { generated[$0] != entry.greedy[$0] }
        #expect(split == nil, "\(type): greedy differs from llama.cpp at step \(split ?? -1)")
    }
}

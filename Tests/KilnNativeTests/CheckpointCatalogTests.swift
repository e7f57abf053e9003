import Foundation
import KilnTestSupport
import Testing

/// The models scripts/setup installs are present and are what the catalog says: a GGUF v3 file
/// for SmolLM2 and a sentence-transformers folder whose safetensors header parses. Missing files
/// skip locally and fail on CI (CI=true), where setup must have run.
@Suite struct CheckpointCatalogTests {
    static let checkpoints = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints")

    /// Returns the file's bytes prefix, or nil (after recording a failure on CI) when it is missing.
    static func head(_ relativePath: String, bytes: Int) throws -> [UInt8]? {
        let url = checkpoints.appendingPathComponent(relativePath)
        guard FileManager.default.fileExists(atPath: url.path) else {
            if Fixtures.isCI { Issue.record("model file missing: \(url.path) (run scripts/setup)") }
            return nil
        }
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        return [UInt8](try handle.read(upToCount: bytes) ?? Data())
    }

    @Test func smolLM2IsGGUFVersion3() throws {
        guard let bytes = try Self.head("SmolLM2-135M-Instruct.Q4_1.gguf", bytes: 24) else { return }
        #expect(Array(bytes[0..<4]) == Array("GGUF".utf8))
        #expect(bytes[4] == 3 && bytes[5] == 0 && bytes[6] == 0 && bytes[7] == 0)
        let size = try FileManager.default.attributesOfItem(
            atPath: Self.checkpoints.appendingPathComponent("SmolLM2-135M-Instruct.Q4_1.gguf").path)[.size] as? Int
        #expect(size == 98_362_432)
    }

    @Test func miniLMHasWeightsTokenizerAndPooling() throws {
        guard let bytes = try Self.head("all-MiniLM-L6-v2/model.safetensors", bytes: 1 << 16) else { return }
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength > 0 && headerLength + 8 <= bytes.count)
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any]
        let embeddings = header?["embeddings.word_embeddings.weight"] as? [String: Any]
        #expect(embeddings?["shape"] as? [Int] == [30522, 384])
        for file in ["tokenizer.json", "config.json", "1_Pooling/config.json", "sentence_bert_config.json"] {
            #expect(FileManager.default.fileExists(atPath: Self.checkpoints.appendingPathComponent("all-MiniLM-L6-v2/\(file)").path), "\(file)")
        }
    }
}

import Foundation
import KilnTestSupport
import KilnTokenizers
import KilnTransformer
import Testing

/// all-MiniLM-L6-v2 against sentence-transformers: the 100 embeddings of fixtures/embeddings.
@Suite struct BertModelTests {
    struct Item: Decodable {
        let id: String
        let text: String
        let input_ids: [Int]
        let embedding: [Float]
    }

    struct Fixture: Decodable { let items: [Item] }

    @Test func miniLMMatchesSentenceTransformers() throws {
        let folder = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/all-MiniLM-L6-v2")
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path) else {
            if Fixtures.isCI { Issue.record("model files missing: \(folder.path) (run scripts/setup)") }
            return
        }
        let model = try BertModel(folder: folder)
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.url("embeddings/embeddings.json")))
        // Batches of similar length, as an embedder would form them.
        let items = fixture.items.sorted { $0.input_ids.count < $1.input_ids.count }
        var worst: Float = 1
        for start in stride(from: 0, to: items.count, by: 10) {
            let chunk = Array(items[start..<min(items.count, start + 10)])
            let vectors = try model.embed(chunk.map(\.input_ids))
            for (item, vector) in zip(chunk, vectors) {
                #expect(vector.count == 384)
                let cosine = zip(vector, item.embedding).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                worst = min(worst, cosine)
                #expect(cosine > 0.9999, "\(item.id): cosine \(cosine)")
                #expect(maxError(vector, item.embedding, floor: 1) < 2e-4, "\(item.id)")
            }
        }
        print("MiniLM: worst cosine to sentence-transformers over 100 texts: \(worst)")
    }
}

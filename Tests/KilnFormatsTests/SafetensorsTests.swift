import Foundation
import KilnFormats
import KilnTestSupport
import Testing

/// safetensors: atomic round trip, the MiniLM checkpoint, and every kind of corrupt header.
@Suite struct SafetensorsTests {
    static func parse(_ bytes: [UInt8]) throws -> SafetensorsFile {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 64)
        storage.copyBytes(from: bytes)
        return try SafetensorsFile(unsafeBytes: UnsafeRawBufferPointer(rebasing: storage[0..<bytes.count]))
    }

    /// A file with the given header JSON and `dataBytes` bytes of data.
    static func file(_ header: String, dataBytes: Int) -> [UInt8] {
        let json = Array(header.utf8)
        return le(UInt64(json.count)) + json + [UInt8](repeating: 7, count: dataBytes)
    }

    static func rejects(_ bytes: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) { _ = try parse(bytes) } throws: { "\($0)".contains(fragment) }
    }

    @Test func writesAtomicallyAndReadsBack() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("m.safetensors").path
        let weights: [Float] = [1, -2, 3.5, 0, 5, 6]
        let steps: [Int64] = [42]
        try SafetensorsWriter.write([
            .init(name: "layer.weight", dtype: .f32, shape: [2, 3], bytes: weights.withUnsafeBytes { Data($0) }),
            .init(name: "step", dtype: .i64, shape: [1], bytes: steps.withUnsafeBytes { Data($0) }),
            .init(name: "empty", dtype: .f16, shape: [0, 4], bytes: Data()),
        ], metadata: ["format": "kiln"], to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["m.safetensors"])  // no temporary left
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["format": "kiln"])
        let t = try #require(file.tensor(named: "layer.weight"))
        #expect(t.shape == [2, 3] && t.dtype == .f32)
        #expect(file.data(of: t).withMemoryRebound(to: Float.self) { Array($0) } == weights)
        #expect(file.data(of: try #require(file.tensor(named: "step"))).loadUnaligned(as: Int64.self) == 42)
        #expect(file.tensor(named: "empty")?.elementCount == 0)
    }

    @Test func readsMiniLM() throws {
        let path = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/all-MiniLM-L6-v2/model.safetensors").path
        guard FileManager.default.fileExists(atPath: path) else {
            if Fixtures.isCI { Issue.record("model file missing: \(path) (run scripts/setup)") }
            return
        }
        let file = try SafetensorsFile(path: path)
        let embeddings = try #require(file.tensor(named: "embeddings.word_embeddings.weight"))
        #expect(embeddings.shape == [30522, 384] && embeddings.dtype == .f32)
        #expect(file.tensors.contains { $0.name == "encoder.layer.5.output.LayerNorm.bias" })
        #expect(file.tensors.map { $0.range.count }.reduce(0, +) + 8 < 90_868_376)
    }

    @Test func refusesCorruptFiles() {
        Self.rejects([1, 2, 3], "8-byte header length")
        Self.rejects(le(UInt64(1) << 40), "exceeds")
        Self.rejects(le(UInt64(100)) + [UInt8](repeating: 0x20, count: 10), "needs 100 bytes")
        Self.rejects(Self.file("not json", dataBytes: 0), "not JSON")
        Self.rejects(Self.file("[1, 2]", dataBytes: 0), "not a JSON object")
        Self.rejects(Self.file(#"{"a": {"dtype": "F8", "shape": [1], "data_offsets": [0, 1]}}"#, dataBytes: 1), "dtype F8")
        Self.rejects(Self.file(#"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, dataBytes: 8), "is 12 bytes but data_offsets span 8")
        Self.rejects(Self.file(#"{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, dataBytes: 4), "bad dimension")
        Self.rejects(Self.file(#"{"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}"#, dataBytes: 4), "overflows")
        Self.rejects(Self.file(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, dataBytes: 4), "ends at data byte 8")
        Self.rejects(Self.file(#"{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}"#, dataBytes: 6), "overlaps")
        Self.rejects(Self.file(#"{"a": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}}"#, dataBytes: 4), "hole of 2 bytes")
        Self.rejects(Self.file(#"{"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}"#, dataBytes: 5), "3 bytes after the last tensor")
        Self.rejects(Self.file(#"{"a": {"dtype": "U8", "shape": [2], "data_offsets": [2, 0]}}"#, dataBytes: 2), "bad data_offsets")
        Self.rejects(Self.file(#"{"__metadata__": {"k": 1}}"#, dataBytes: 0), "not a string")
    }
}

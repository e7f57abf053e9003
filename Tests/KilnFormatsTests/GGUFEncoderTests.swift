import Foundation
import KilnFormats
import KilnTestSupport
import Testing

/// GGUF writing: what the encoder writes the reader reads back unchanged, and its header for a
/// real file's content is that file's header byte for byte.
@Suite struct GGUFEncoderTests {
    @Test func everyValueTypeRoundTrips() throws {
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")), ("u8", .uint8(200)), ("i8", .int8(-5)), ("u16", .uint16(65000)),
            ("i16", .int16(-300)), ("u32", .uint32(4_000_000_000)), ("i32", .int32(-7)), ("u64", .uint64(1 << 40)),
            ("i64", .int64(-(1 << 40))), ("f32", .float32(0.1)), ("f64", .float64(-2.5e-300)), ("yes", .bool(true)),
            ("no", .bool(false)), ("text", .string("é ✓ \u{0}")), ("floats", .array(.float32([1, -0.0, .infinity]))),
            ("words", .array(.string(["a", "", "ünï"]))), ("flags", .array(.bool([true, false]))),
            ("nested", .array(.array([.int32([1, 2]), .int32([])]))),
        ]
        let tensors = [
            GGUFEncoder.TensorEntry(name: "a.weight", shape: [64, 3], type: .q8_0),
            GGUFEncoder.TensorEntry(name: "b", shape: [5, 1, 1], type: .f32),
            GGUFEncoder.TensorEntry(name: "c", shape: [256, 2], type: .q4_K),
        ]
        let (header, offsets) = try GGUFEncoder.header(metadata: metadata, tensors: tensors)
        #expect(header.count % 32 == 0)
        #expect(offsets == [0, 224, 256])  // 6·34 = 204 → 224; 20 → 32
        var bytes = header
        for (t, offset) in zip(tensors, offsets) {
            bytes += [UInt8](repeating: 0, count: header.count + offset - bytes.count)
            bytes += (0..<t.byteCount!).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ offset) }
        }
        let file = try bytes.withUnsafeBytes { raw -> GGUFFile in
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: raw.count, alignment: 64)
            copy.copyMemory(from: raw)
            return try GGUFFile(unsafeBytes: UnsafeRawBufferPointer(copy))
        }
        #expect(file.metadata.map(\.key) == metadata.map(\.key))
        for (read, written) in zip(file.metadata, metadata) where read.key != "f32" && read.key != "floats" {
            #expect(read.value == written.value, "\(read.key)")
        }
        #expect(file["f32"] == .float32(0.1))
        #expect(file.tensors.map(\.name) == ["a.weight", "b", "c"])
        #expect(file.tensors[1].shape == [5])  // trailing dimensions of 1 are not written, as ggml does
        #expect(file.tensors[2].type == .q4_K)
    }

    /// The encoder's header for SmolLM2's metadata and tensor table is the file's own header.
    @Test func headerOfARealFileIsThatFilesHeader() throws {
        let path = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: path) else {
            if Fixtures.isCI { Issue.record("missing \(path) (run scripts/setup)") }
            return
        }
        let file = try GGUFFile(path: path)
        let entries = file.tensors.map { GGUFEncoder.TensorEntry(name: $0.name, shape: $0.shape, type: $0.type) }
        let (header, offsets) = try GGUFEncoder.header(metadata: file.metadata, tensors: entries, alignment: file.alignment)
        #expect(header.count == file.dataOffset)
        #expect(offsets == file.tensors.map { $0.fileOffset - file.dataOffset })
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        let original = [UInt8](handle.readData(ofLength: header.count))
        #expect(original == header)
    }
}

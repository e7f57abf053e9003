import Foundation
import KilnFormats
import KilnTestSupport
import Testing

/// The GGUF reader against synthetic files (round trip, every truncation, every kind of corrupt
/// field) and against real files: the SmolLM2 checkpoint and llama.cpp's vocab-only GGUFs.
@Suite struct GGUFReaderTests {
    static func parse(_ bytes: [UInt8]) throws -> GGUFFile {
        // The file keeps pointers into the bytes: copy into storage that outlives it.
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 64)
        storage.copyBytes(from: bytes)
        return try GGUFFile(unsafeBytes: UnsafeRawBufferPointer(rebasing: storage[0..<bytes.count]))
    }

    static func rejects(_ bytes: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try parse(bytes)
            Issue.record("accepted a file that should fail with “\(fragment)”", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(fragment), "\(error)", sourceLocation: sourceLocation)
        }
    }

    static var sample: GGUFBuilder {
        var b = GGUFBuilder()
        b.alignment = 64
        b.metadata = [
            ("general.architecture", .string(Array("llama".utf8))),
            ("general.alignment", .u32(64)),
            ("u8", .u8(200)), ("i8", .i8(-5)), ("u16", .u16(60000)), ("i16", .i16(-300)),
            ("u32", .u32(4_000_000_000)), ("i32", .i32(-7)), ("u64", .u64(1 << 40)), ("i64", .i64(-(1 << 40))),
            ("f32", .f32(1.5)), ("f64", .f64(-2.25)), ("flag", .bool(1)),
            ("tokens", GGUFBuilder.strings(["<s>", "▁hello", "é", ""])),
            ("scores", .array(type: 6, count: 2, payload: le(Float(0.5).bitPattern) + le(Float(-1).bitPattern))),
            ("nested", .array(type: 9, count: 2, payload: le(UInt32(4)) + le(UInt64(1)) + le(UInt32(7))
                + le(UInt32(4)) + le(UInt64(2)) + le(UInt32(8)) + le(UInt32(9)))),
        ]
        let f32 = (0..<8).flatMap { le(Float($0).bitPattern) }
        let q41 = [UInt8](repeating: 0x11, count: 20 * 2)
        b.tensors = [
            .init(name: "weights.f32", shape: [4, 2], type: 0, offset: 0, data: f32),
            .init(name: "weights.q4_1", shape: [32, 2], type: 3, offset: 64, data: q41),
        ]
        return b
    }

    @Test func roundTripsEveryValueTypeAndTensorData() throws {
        let file = try Self.parse(Self.sample.bytes())
        #expect(file.version == 3 && file.alignment == 64)
        #expect(try file.string("general.architecture") == "llama")
        #expect(file["u8"] == .uint8(200) && file["i8"] == .int8(-5) && file["u16"] == .uint16(60000))
        #expect(file["i16"] == .int16(-300) && file["u32"] == .uint32(4_000_000_000) && file["i32"] == .int32(-7))
        #expect(file["u64"] == .uint64(1 << 40) && file["i64"] == .int64(-(1 << 40)))
        #expect(file["f32"] == .float32(1.5) && file["f64"] == .float64(-2.25))
        #expect(try file.bool("flag"))
        #expect(try file.strings("tokens") == ["<s>", "▁hello", "é", ""])
        #expect(try file.array("scores").floats == [0.5, -1])
        #expect(try file.array("nested") == .array([.uint32([7]), .uint32([8, 9])]))
        #expect(file.metadata.map(\.key).first == "general.architecture")
        let t = try #require(file.tensor(named: "weights.f32"))
        #expect(t.shape == [4, 2] && t.type == .f32 && t.byteCount == 32 && t.fileOffset % 64 == 0)
        let values = file.data(of: t).withMemoryRebound(to: Float.self) { Array($0) }
        #expect(values == (0..<8).map(Float.init))
        let q = try #require(file.tensor(named: "weights.q4_1"))
        #expect(q.type == .q4_1 && q.byteCount == 40 && q.fileOffset == t.fileOffset + 64)
        #expect(file.data(of: q).allSatisfy { $0 == 0x11 })
        #expect(throws: GGUFError.wrongType(key: "u8", expected: "string", found: "uint8")) { try file.string("u8") }
        #expect(throws: GGUFError.missingKey("absent")) { try file.integer("absent") }
    }

    /// Every proper prefix of a valid file is refused with an error (never a crash or a hang).
    @Test func everyTruncationIsRefused() throws {
        let bytes = Self.sample.bytes()
        for length in 0..<bytes.count {
            #expect(throws: GGUFError.self) { _ = try Self.parse(Array(bytes[0..<length])) }
        }
    }

    @Test func refusesCorruptHeaders() {
        var b = Self.sample
        b.magic = 0x4C4C_4747
        Self.rejects(b.bytes(), "not a GGUF file")
        b = Self.sample
        b.version = 1
        Self.rejects(b.bytes(), "version 1 is not supported")
        b = Self.sample
        b.tensorCountOverride = 1 << 60
        Self.rejects(b.bytes(), "tensor count: 1152921504606846976 entries cannot fit")
    }

    @Test func refusesCorruptMetadata() {
        func with(_ key: String, _ value: GGUFBuilder.Value) -> [UInt8] {
            var b = Self.sample
            b.metadata.append((key, value))
            return b.bytes()
        }
        Self.rejects([], "truncated GGUF: magic")
        var b = Self.sample
        b.metadata = [("k", .u8(1))]
        var bytes = b.bytes()
        // Overwrite the key length with 2^50.
        bytes.replaceSubrange(24..<32, with: le(UInt64(1) << 50))
        Self.rejects(bytes, "metadata key #0")
        Self.rejects(with("bad.bool", .bool(2)), "bool byte is 2")
        Self.rejects(with("bad.utf8", .string([0xFF, 0xFE])), "bad.utf8: is not valid UTF-8")
        Self.rejects(with("big.array", .array(type: 4, count: 1 << 40, payload: [])), "element count of big.array")
        Self.rejects(with("odd.type", .array(type: 42, count: 0, payload: [])), "unknown array element type 42")
        var nested: [UInt8] = []
        for _ in 0..<10 { nested = le(UInt32(9)) + le(UInt64(1)) + nested }
        Self.rejects(with("deep", .array(type: 9, count: 1, payload: nested + le(UInt32(4)) + le(UInt64(0)))), "nested deeper")
        Self.rejects(with("general.alignment", .u32(48)), "appears twice")
        b = Self.sample
        b.metadata[1] = ("general.alignment", .u32(48))
        Self.rejects(b.bytes(), "must be a positive power of two")
    }

    @Test func refusesCorruptTensors() {
        func with(_ change: (inout GGUFBuilder.Tensor) -> Void) -> [UInt8] {
            var b = Self.sample
            change(&b.tensors[1])
            return b.bytes()
        }
        Self.rejects(with { $0.shape = [32, 0] }, "dimension 1 is 0")
        Self.rejects(with { $0.shape = [32, 1, 1, 1, 1] }, "has 5 dimensions")
        Self.rejects(with { $0.type = 99 }, "weights.q4_1 has type 99 (unknown to ggml), which Kiln cannot read")
        Self.rejects(with { $0.type = 12 }, "first dimension 32 is not a multiple of the Q4_K block size 256")
        Self.rejects(with { $0.shape = [33, 2] }, "not a multiple of the Q4_1 block size 32")
        Self.rejects(with { $0.offset = 65 }, "not a multiple of the alignment 64")
        Self.rejects(with { $0.shape = [32, 1 << 20] }, "data of tensor weights.q4_1")
        Self.rejects(with { $0.name = "weights.f32" }, "tensor weights.f32: appears twice")
        Self.rejects(with { $0.shape = [1 << 30, 1 << 30, 1 << 30] }, "too large")
    }

    @Test func readsSmolLM2() throws {
        let path = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: path) else {
            if Fixtures.isCI { Issue.record("model file missing: \(path) (run scripts/setup)") }
            return
        }
        let file = try GGUFFile(path: path)
        #expect(file.version == 3)
        #expect(try file.string("general.architecture") == "llama")
        #expect(try file.integer("llama.block_count") == 30)
        #expect(try file.integer("llama.embedding_length") == 576)
        #expect(try file.integer("llama.feed_forward_length") == 1536)
        #expect(try file.integer("llama.attention.head_count") == 9)
        #expect(try file.integer("llama.attention.head_count_kv") == 3)
        #expect(try file.number("llama.rope.freq_base") == 100_000)
        #expect(try file.string("tokenizer.ggml.model") == "gpt2")
        #expect(try file.string("tokenizer.ggml.pre") == "smollm")
        #expect(try file.strings("tokenizer.ggml.tokens").count == 49152)
        #expect(try file.integer("tokenizer.ggml.eos_token_id") == 2)
        #expect(file.tensors.count == 272)
        let types = Dictionary(grouping: file.tensors, by: \.type).mapValues(\.count)
        #expect(types[.q4_1] == 210 && types[.f32] == 61 && types[.q8_0] == 1)
        let embedding = try #require(file.tensor(named: "token_embd.weight"))
        #expect(embedding.shape == [576, 49152] && embedding.type == .q8_0)
        // The tensors fill the data section: the last one ends at the end of the file.
        #expect(file.tensors.map { $0.fileOffset + $0.byteCount }.max() == 98_362_432)
    }

    @Test func readsLlamaCppVocabularies() throws {
        let directory = Fixtures.url("tokenizers/llama-cpp-vocab")
        let names = ["bert-bge", "gpt-2", "llama-bpe", "llama-spm", "phi-3", "qwen2", "starcoder"]
        for name in names {
            let path = directory.appendingPathComponent("ggml-vocab-\(name).gguf").path
            guard FileManager.default.fileExists(atPath: path) else {
                Issue.record("missing fixture \(path)")
                continue
            }
            let file = try GGUFFile(path: path)
            let tokens = try file.strings("tokenizer.ggml.tokens")
            #expect(!tokens.isEmpty, "\(name)")
            let model = try file.string("tokenizer.ggml.model")
            #expect(["bert", "gpt2", "llama"].contains(model), "\(name)")
        }
    }
}

import Foundation
import KilnFormats
import KilnTestSupport

/// Kiln's tiny test Llama (scripts/make-tiny-models): hidden 256, feed-forward 512, 2 layers,
/// 4 query heads sharing 1 key/value head, an untied output head, and the vocabulary of
/// llama.cpp's ggml-vocab-llama-spm.gguf. Rebuilt here from the same counter-based generator
/// and written in the same layout, so the file is the one the script wrote (its sha256 is in the
/// fixture) without committing 67 MB.
enum TinyLlama {
    static let hidden = 256, feedForward = 512, layers = 2, heads = 4, kvHeads = 1

    static var vocabularyPath: String {
        Fixtures.url("tokenizers/llama-cpp-vocab/ggml-vocab-llama-spm.gguf").path
    }

    /// Element i of tensor `index`: q = (splitmix64((index + 1)·φ + i·c) >> 40) − 2^23, scaled.
    static func weights(index: Int, count: Int, amplitude: Float, norm: Bool) -> [Float] {
        (0..<count).map { i in
            var z = UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i) &* 0xD1B5_4A32_D192_ED03
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let q = Float(Int64(z >> 40) - (1 << 23))
            return norm ? 1 + q * 0x1p-26 : q * (amplitude * 0x1p-23)
        }
    }

    /// Writes the F32 model to `path`.
    static func write(to path: String) throws {
        let vocabulary = try GGUFFile(path: vocabularyPath)
        let tokens = try vocabulary.strings("tokenizer.ggml.tokens").count
        var metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")), ("general.name", .string("kiln-tiny-llama")),
            ("llama.context_length", .uint32(512)), ("llama.embedding_length", .uint32(UInt32(hidden))),
            ("llama.block_count", .uint32(UInt32(layers))), ("llama.feed_forward_length", .uint32(UInt32(feedForward))),
            ("llama.attention.head_count", .uint32(UInt32(heads))), ("llama.attention.head_count_kv", .uint32(UInt32(kvHeads))),
            ("llama.rope.freq_base", .float32(10000)), ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
            ("general.file_type", .uint32(0)),
        ]
        metadata += vocabulary.metadata.filter { $0.key.hasPrefix("tokenizer.") }
        let kv = hidden / heads * kvHeads
        // (name, [columns, rows] as GGUF lists them, amplitude; 0 for a norm)
        var plan: [(String, [Int], Float)] = [
            ("token_embd.weight", [hidden, tokens], 1), ("output_norm.weight", [hidden], 0), ("output.weight", [hidden, tokens], 0x1p-4),
        ]
        for l in 0..<layers {
            let p = "blk.\(l)."
            plan += [(p + "attn_norm.weight", [hidden], 0), (p + "attn_q.weight", [hidden, hidden], 0x1p-4),
                     (p + "attn_k.weight", [hidden, kv], 0x1p-4), (p + "attn_v.weight", [hidden, kv], 0x1p-4),
                     (p + "attn_output.weight", [hidden, hidden], 0x1p-4), (p + "ffn_norm.weight", [hidden], 0),
                     (p + "ffn_gate.weight", [hidden, feedForward], 0x1p-4), (p + "ffn_up.weight", [hidden, feedForward], 0x1p-4),
                     (p + "ffn_down.weight", [feedForward, hidden], 0x1p-5)]
        }
        let entries = plan.map { GGUFEncoder.TensorEntry(name: $0.0, shape: $0.1, type: .f32) }
        let header = try GGUFEncoder.header(metadata: metadata, tensors: entries)
        let writer = try DurableFile.Writer(path: path)
        try writer.write(header.bytes)
        for (index, (_, shape, amplitude)) in plan.enumerated() {
            let values = weights(index: index, count: shape.reduce(1, *), amplitude: amplitude, norm: amplitude == 0)
            try values.withUnsafeBytes { try writer.write($0) }
            try writer.writeZeros(GGUFEncoder.padded(values.count * 4, to: 32) - values.count * 4)
        }
        try writer.commit()
    }
}

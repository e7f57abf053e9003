import Foundation
import KilnFormats
import KilnTestSupport

/// Kiln's tiny test models (scripts/make-tiny-models), one per architecture: hidden 256,
/// feed-forward 512, 2 layers, 4 query heads sharing 1 key/value head, an untied output head, the
/// vocabulary of llama.cpp's ggml-vocab-llama-spm.gguf, and each architecture's own tensors
/// (qwen2: Q/K/V biases; qwen3: heads of 128 on the 256-wide model, each query and key head
/// RMS-normalized; llama3: a `llama` file with Llama 3's RoPE base and frequency divisors; gemma3:
/// heads of 128, Q/K head norms, post-norms, a tied output head, a 4-key window on layer 0 by an
/// integer pattern with its own RoPE base; gemma2: post-norms, a 4-key window on layer 0, attention
/// and logit soft-caps of 2 and 3; phi3: fused attn_qkv and gate/up). Rebuilt here from the same
/// counter-based generator and written in the same layout, so each file is the one the script wrote (its sha256 is in the fixture) without
/// committing 67 MB.
enum TinyModel: String, CaseIterable, Sendable {
    case llama, qwen2, qwen3, llama3, gemma3, gemma2, phi3

    /// general.architecture: llama3 is a `llama` file.
    var architecture: String { self == .llama3 ? "llama" : rawValue }
    /// llama3's rope_freqs.weight, one divisor per rotated pair (32): Llama 3's shape, 1 for the
    /// fast frequencies rising to 8 for the slow ones, in values a float holds exactly.
    static let ropeFactors: [Float] = [Float](repeating: 1, count: 12) + [2, 3, 4, 5, 6, 7, 7.5, 7.75] + [Float](repeating: 8, count: 12)

    /// Where the tests write this model's F32 base (per test process).
    static func basePath(_ model: TinyModel) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tiny-\(getpid()).\(model.rawValue).F32.gguf").path
    }

    /// qwen3's heads are wider than hidden / heads, as Qwen 3's are.
    var headDimension: Int? { self == .qwen3 || self == .gemma3 ? 128 : nil }
    var isGemma: Bool { self == .gemma3 || self == .gemma2 }

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

    /// Writes this architecture's F32 model to `path`.
    func write(to path: String) throws {
        let hidden = Self.hidden, feedForward = Self.feedForward, layers = Self.layers, heads = Self.heads, kvHeads = Self.kvHeads
        let a = architecture
        let vocabulary = try GGUFFile(path: Self.vocabularyPath)
        let tokens = try vocabulary.strings("tokenizer.ggml.tokens").count
        var metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string(a)), ("general.name", .string(self == .phi3 ? "kiln-tiny-fused" : "kiln-tiny-\(rawValue)")),
            ("\(a).context_length", .uint32(512)), ("\(a).embedding_length", .uint32(UInt32(hidden))),
            ("\(a).block_count", .uint32(UInt32(layers))), ("\(a).feed_forward_length", .uint32(UInt32(feedForward))),
            ("\(a).attention.head_count", .uint32(UInt32(heads))), ("\(a).attention.head_count_kv", .uint32(UInt32(kvHeads))),
            ] + (headDimension.map { [("\(a).attention.key_length", .uint32(UInt32($0))),
                                      ("\(a).attention.value_length", .uint32(UInt32($0)))] } ?? []) + [
            ("\(a).rope.freq_base", .float32(self == .llama3 ? 500_000 : self == .gemma3 ? 1_000_000 : 10000)),
            ("\(a).attention.layer_norm_rms_epsilon", .float32(1e-5)),
        ]
        if isGemma { metadata.append(("\(a).attention.sliding_window", .uint32(4))) }
        if self == .gemma3 { metadata.append(("gemma3.attention.sliding_window_pattern", .uint32(2))) }
        if self == .gemma2 { metadata += [("gemma2.attn_logit_softcapping", .float32(2)), ("gemma2.final_logit_softcapping", .float32(3))] }
        metadata.append(("general.file_type", .uint32(0)))
        metadata += vocabulary.metadata.filter { $0.key.hasPrefix("tokenizer.") }
        let head = headDimension ?? hidden / heads
        let kv = head * kvHeads, q = head * heads
        // (name, [columns, rows] as GGUF lists them, amplitude; 0 for a norm)
        var plan: [(String, [Int], Float)] = [("token_embd.weight", [hidden, tokens], 1), ("output_norm.weight", [hidden], 0)]
        if !isGemma { plan.append(("output.weight", [hidden, tokens], 0x1p-4)) }  // Gemma ties its output head
        for l in 0..<layers {
            let p = "blk.\(l)."
            plan.append((p + "attn_norm.weight", [hidden], 0))
            if self == .phi3 {
                plan.append((p + "attn_qkv.weight", [hidden, q + 2 * kv], 0x1p-4))
            } else {
                plan.append((p + "attn_q.weight", [hidden, q], 0x1p-4))
                if self == .qwen2 { plan.append((p + "attn_q.bias", [hidden], 0x1p-3)) }
                plan.append((p + "attn_k.weight", [hidden, kv], 0x1p-4))
                if self == .qwen2 { plan.append((p + "attn_k.bias", [kv], 0x1p-3)) }
                plan.append((p + "attn_v.weight", [hidden, kv], 0x1p-4))
                if self == .qwen2 { plan.append((p + "attn_v.bias", [kv], 0x1p-3)) }
            }
            if self == .qwen3 || self == .gemma3 { plan += [(p + "attn_q_norm.weight", [head], 0), (p + "attn_k_norm.weight", [head], 0)] }
            plan.append((p + "attn_output.weight", [q, hidden], 0x1p-4))
            if isGemma { plan.append((p + "post_attention_norm.weight", [hidden], 0)) }
            plan.append((p + "ffn_norm.weight", [hidden], 0))
            if self == .phi3 {
                plan.append((p + "ffn_up.weight", [hidden, 2 * feedForward], 0x1p-4))
            } else {
                plan += [(p + "ffn_gate.weight", [hidden, feedForward], 0x1p-4), (p + "ffn_up.weight", [hidden, feedForward], 0x1p-4)]
            }
            plan.append((p + "ffn_down.weight", [feedForward, hidden], 0x1p-5))
            if isGemma { plan.append((p + "post_ffw_norm.weight", [hidden], 0)) }
        }
        if self == .llama3 { plan.append(("rope_freqs.weight", [Self.ropeFactors.count], -1)) }  // explicit values
        let entries = plan.map { GGUFEncoder.TensorEntry(name: $0.0, shape: $0.1, type: .f32) }
        let header = try GGUFEncoder.header(metadata: metadata, tensors: entries)
        let writer = try DurableFile.Writer(path: path)
        try writer.write(header.bytes)
        for (index, (_, shape, amplitude)) in plan.enumerated() {
            let values = amplitude < 0 ? Self.ropeFactors : Self.weights(index: index, count: shape.reduce(1, *), amplitude: amplitude, norm: amplitude == 0)
            try values.withUnsafeBytes { try writer.write($0) }
            try writer.writeZeros(GGUFEncoder.padded(values.count * 4, to: 32) - values.count * 4)
        }
        try writer.commit()
    }
}

import KilnFormats

/// A file type of llama-quantize ("Q4_K_M"): the number it records as `general.file_type` and the
/// tensor type most weights get. The mixtures (_S, _M, _L) give some tensors more bits; the
/// choices are `TensorTypeSelector`'s.
public struct QuantizationScheme: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    /// llama.cpp's llama_ftype number.
    public let fileType: UInt32
    public let defaultType: GGMLType

    public var description: String { name }

    /// The schemes `kiln quantize` offers, in llama-quantize's numbering order.
    public static let all: [QuantizationScheme] = [
        .init(name: "F16", fileType: 1, defaultType: .f16),
        .init(name: "Q4_0", fileType: 2, defaultType: .q4_0),
        .init(name: "Q4_1", fileType: 3, defaultType: .q4_1),
        .init(name: "Q8_0", fileType: 7, defaultType: .q8_0),
        .init(name: "Q5_0", fileType: 8, defaultType: .q5_0),
        .init(name: "Q5_1", fileType: 9, defaultType: .q5_1),
        .init(name: "Q2_K", fileType: 10, defaultType: .q2_K),
        .init(name: "Q3_K_S", fileType: 11, defaultType: .q3_K),
        .init(name: "Q3_K_M", fileType: 12, defaultType: .q3_K),
        .init(name: "Q3_K_L", fileType: 13, defaultType: .q3_K),
        .init(name: "Q4_K_S", fileType: 14, defaultType: .q4_K),
        .init(name: "Q4_K_M", fileType: 15, defaultType: .q4_K),
        .init(name: "Q5_K_S", fileType: 16, defaultType: .q5_K),
        .init(name: "Q5_K_M", fileType: 17, defaultType: .q5_K),
        .init(name: "Q6_K", fileType: 18, defaultType: .q6_K),
        .init(name: "IQ4_NL", fileType: 25, defaultType: .iq4_nl),
        .init(name: "IQ4_XS", fileType: 30, defaultType: .iq4_xs),
        .init(name: "BF16", fileType: 32, defaultType: .bf16),
    ]

    /// The scheme named `name` (case-insensitive, as llama-quantize accepts it).
    public static func named(_ name: String) -> QuantizationScheme? {
        all.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }
    }

    /// Whether tensors are quantized to blocks (false for the F16 and BF16 conversions).
    public var isBlockQuantized: Bool { defaultType.blockGeometry.map { $0.elements > 1 } ?? false }
}

/// The facts of a model that llama-quantize's tensor choices depend on.
public struct QuantizationModelFacts: Sendable {
    public var architecture: String
    public var layerCount: Int
    public var headCount: Int
    public var keyValueHeadCount: Int
    public var expertCount: Int
    /// No separate output.weight: the token embeddings are also the output head.
    public var tiedEmbeddings: Bool
    /// Attention-value-like tensors (attn_v, attn_qkv, attn_kv_b) in the file.
    public var valueTensorCount: Int

    public init(file: GGUFFile) {
        architecture = (try? file.string("general.architecture")) ?? ""
        let a = architecture
        func first(_ key: String) -> Int? {
            if let n = file[key]?.integer { return n }
            if case .array(let values)? = file[key] { return values.integers?.first }
            return nil
        }
        layerCount = first("\(a).block_count") ?? 0
        headCount = first("\(a).attention.head_count") ?? 0
        keyValueHeadCount = first("\(a).attention.head_count_kv") ?? headCount
        expertCount = first("\(a).expert_count") ?? 0
        tiedEmbeddings = file.tensor(named: "output.weight") == nil
        valueTensorCount = file.tensors.filter { TensorRole(name: $0.name).isValueLike }.count
    }

    /// Query heads per key/value head.
    var groupedQueryFactor: Int { keyValueHeadCount > 0 ? headCount / keyValueHeadCount : 0 }
    var isFalcon: Bool { architecture == "falcon" }
    /// Llama 2/3 70B: 80 layers with grouped-query attention (llama.cpp gives its attn_v more bits).
    var isLlama70B: Bool { architecture == "llama" && layerCount == 80 && headCount != keyValueHeadCount }
}

/// The broad kind of a tensor that the mixtures distinguish, by name.
enum TensorRole: Equatable {
    case tokenEmbedding, output, attentionQ, attentionK, attentionV, attentionQKV, attentionKVB
    case attentionOutput, ffnUp, ffnGate, ffnDown, other

    init(name: String) {
        if name == "output.weight" { self = .output; return }
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" { self = .tokenEmbedding; return }
        let byFragment: [(String, TensorRole)] = [
            ("attn_qkv.weight", .attentionQKV), ("attn_kv_b.weight", .attentionKVB), ("attn_v.weight", .attentionV),
            ("attn_k.weight", .attentionK), ("attn_q.weight", .attentionQ), ("attn_output.weight", .attentionOutput),
            ("ffn_up", .ffnUp), ("ffn_gate", .ffnGate), ("ffn_down", .ffnDown),
        ]
        self = byFragment.first { name.contains($0.0) }?.1 ?? .other
    }

    var isValueLike: Bool { self == .attentionV || self == .attentionQKV || self == .attentionKVB }
}

/// llama-quantize's choice of type for each tensor, in the order it visits them (the choice for
/// attn_v and ffn_down depends on how many came before). Without an importance matrix, without
/// per-tensor overrides.
public struct TensorTypeSelector {
    public let scheme: QuantizationScheme
    public let facts: QuantizationModelFacts
    private var valueIndex = 0
    private var downIndex = 0
    /// Tensors whose first dimension did not fit the chosen type's block (they got a fallback).
    public private(set) var fallbacks: [String] = []

    public init(scheme: QuantizationScheme, facts: QuantizationModelFacts) {
        self.scheme = scheme
        self.facts = facts
    }

    /// Name fragments of 2-D weights llama.cpp never quantizes (norms, routers, small tables).
    static let keptFragments = [
        "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
        "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
        "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
        "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
        ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger",
        "a.rvq.codebook", "mm.a.code_embd",
    ]

    /// Whether llama.cpp would quantize this tensor at all (2-D or more, a weight, not a norm…).
    public static func allowsQuantization(name: String, shape: [Int]) -> Bool {
        let dimensions = (shape.lastIndex { $0 > 1 } ?? 0) + 1
        guard dimensions >= 2, name.hasSuffix("weight") else { return false }
        if name == "position_embd.weight" || name == "token_types.weight" { return false }
        return !keptFragments.contains { name.contains($0) }
    }

    /// The type tensor `name` (shape `shape`, stored as `current`) is written as.
    public mutating func type(name: String, shape: [Int], current: GGMLType) -> GGMLType {
        guard Self.allowsQuantization(name: name, shape: shape) else { return current }
        guard scheme.isBlockQuantized else { return scheme.defaultType }
        let chosen = mixtureType(name: name, columns: shape[0], role: TensorRole(name: name))
        return fallback(name: name, columns: shape[0], type: chosen)
    }

    private static func blockElements(_ t: GGMLType) -> Int { t.blockGeometry?.elements ?? 1 }

    private static func usesMoreBits(_ layer: Int, _ layers: Int) -> Bool {
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2
    }

    private mutating func mixtureType(name: String, columns: Int, role: TensorRole) -> GGMLType {
        let s = scheme.name
        var type = scheme.defaultType
        let experts = facts.expertCount
        if role == .output || (facts.tiedEmbeddings && role == .tokenEmbedding) {
            if facts.isFalcon || columns % Self.blockElements(type) != 0 {
                type = .q8_0
            } else if type != .q8_0 {
                type = .q6_K
            }
        } else if role.isValueLike {
            let gqa = facts.groupedQueryFactor
            if s == "Q2_K" { type = gqa >= 4 ? .q4_K : .q3_K }
            else if s == "Q3_K_M" { type = valueIndex < 2 ? .q5_K : .q4_K }
            else if s == "Q3_K_L" { type = .q5_K }
            else if (s == "IQ4_NL" || s == "IQ4_XS") && gqa >= 4 { type = .q5_K }
            else if (s == "Q4_K_M" || s == "Q5_K_M") && Self.usesMoreBits(valueIndex, facts.valueTensorCount) { type = .q6_K }
            else if s == "Q4_K_S" && valueIndex < 4 { type = .q5_K }
            if facts.isLlama70B && (type == .q3_K || type == .q4_K) { type = .q5_K }
            if experts == 8 { type = .q8_0 }
            valueIndex += 1
        } else if role == .attentionK {
            if experts == 8 { type = .q8_0 }
        } else if role == .ffnDown {
            let layers = facts.layerCount
            var layer = downIndex
            if experts > 1, let parsed = Self.layerNumber(name) { layer = parsed }
            let more = Self.usesMoreBits(layer, layers)
            if s == "Q2_K" { type = .q3_K }
            else if s == "Q3_K_M" { type = layer < layers / 16 ? .q5_K : (!facts.isFalcon || more) ? .q4_K : .q3_K }
            else if s == "Q3_K_L" { type = facts.isFalcon ? .q4_K : .q5_K }
            else if s == "Q4_K_M" {
                if facts.isFalcon { type = layer < layers / 16 ? .q6_K : more ? .q5_K : .q4_K }
                else if more { type = .q6_K }
            }
            else if layer < layers / 8 && (s == "IQ4_NL" || s == "IQ4_XS") { type = .q5_K }
            else if s == "Q5_K_M" && more { type = .q6_K }
            else if s == "Q4_K_S" && !facts.isFalcon && layer < layers / 8 { type = .q5_K }
            downIndex += 1
        } else if role == .attentionOutput {
            if !facts.isFalcon {
                if experts == 8 {
                    if ["Q2_K", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ4_XS"].contains(s) { type = .q5_K }
                } else if s == "Q2_K" { type = .q3_K }
                else if s == "Q3_K_M" { type = .q4_K }
                else if s == "Q3_K_L" { type = .q5_K }
            } else if s == "Q3_K_L" { type = .q4_K }
        }
        return type
    }

    /// A type whose block does not divide the row gives way to a 32-weight type of similar size,
    /// and to F16 when even that does not fit.
    private mutating func fallback(name: String, columns: Int, type: GGMLType) -> GGMLType {
        guard columns % Self.blockElements(type) != 0 else { return type }
        fallbacks.append(name)
        let replacements: [GGMLType: GGMLType] = [
            .iq4_xs: .iq4_nl, .q2_K: .q4_0, .q3_K: .q4_0, .q4_K: .q5_0, .q5_K: .q5_1, .q6_K: .q8_0,
        ]
        let replacement = replacements[type] ?? type
        return columns % Self.blockElements(replacement) == 0 ? replacement : .f16
    }

    /// N of a "blk.N." name, read as C's sscanf("blk.%d.") reads it.
    static func layerNumber(_ name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        var digits = Substring(name.dropFirst(4)).drop { $0 == " " }
        var sign = 1
        if let c = digits.first, c == "-" || c == "+" {
            sign = c == "-" ? -1 : 1
            digits = digits.dropFirst()
        }
        let number = digits.prefix { $0.isASCII && $0.isNumber }
        guard !number.isEmpty, let value = Int(number.prefix(18)) else { return nil }
        return sign * value
    }
}

import KilnFormats

/// Hyper-parameters of a decoder, read from GGUF metadata under its architecture's key prefix and
/// checked for consistency before any buffer is sized from them.
public struct DecoderConfiguration: Sendable, Equatable {
    public var architecture: ModelArchitecture
    public var layerCount: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDimension: Int
    public var rotaryDimension: Int
    public var ropeTheta: Float
    public var rmsNormEpsilon: Float
    public var contextLength: Int
    public var vocabularySize: Int

    public init(gguf file: GGUFFile) throws {
        let a = try ModelArchitecture.named(try file.string("general.architecture"))
        architecture = a
        func int(_ key: String) throws -> Int { try file.integer(a.key(key)) }
        layerCount = try int("block_count")
        hiddenSize = try int("embedding_length")
        intermediateSize = try int("feed_forward_length")
        headCount = try int("attention.head_count")
        kvHeadCount = (try? int("attention.head_count_kv")) ?? headCount
        contextLength = try int("context_length")
        rmsNormEpsilon = Float(try file.number(a.key("attention.layer_norm_rms_epsilon")))
        ropeTheta = Float((try? file.number(a.key("rope.freq_base"))) ?? 10_000)
        vocabularySize = try file.strings("tokenizer.ggml.tokens").count
        guard headCount > 0, kvHeadCount > 0, hiddenSize > 0, layerCount > 0, intermediateSize > 0, contextLength > 0 else {
            throw GGUFError.invalid(field: "\(a) hyper-parameters", reason: "sizes must be positive")
        }
        guard headCount % kvHeadCount == 0 else {
            throw GGUFError.invalid(field: a.key("attention.head_count_kv"), reason: "\(kvHeadCount) does not divide the head count \(headCount)")
        }
        // Heads are hidden / heads wide unless the file says otherwise (Qwen 3: 128 on any width).
        if let keyLength = try? int("attention.key_length") {
            let valueLength = (try? int("attention.value_length")) ?? keyLength
            guard keyLength > 0, keyLength <= 1024, keyLength % 2 == 0 else {
                throw GGUFError.invalid(field: a.key("attention.key_length"), reason: "\(keyLength) is not a usable head dimension")
            }
            guard valueLength == keyLength else {
                throw GGUFError.invalid(field: a.key("attention.value_length"), reason: "\(valueLength) differs from the key length \(keyLength)")
            }
            headDimension = keyLength
        } else {
            guard hiddenSize % headCount == 0 else {
                throw GGUFError.invalid(field: a.key("attention.head_count"), reason: "\(headCount) does not divide the hidden size \(hiddenSize)")
            }
            headDimension = hiddenSize / headCount
        }
        rotaryDimension = (try? int("rope.dimension_count")) ?? headDimension
        guard rotaryDimension > 0, rotaryDimension % 2 == 0, rotaryDimension <= headDimension else {
            throw GGUFError.invalid(field: a.key("rope.dimension_count"), reason: "\(rotaryDimension) must be even and at most the head dimension \(headDimension)")
        }
        guard hiddenSize % 32 == 0, intermediateSize % 32 == 0, (headCount * headDimension) % 32 == 0 else {
            throw GGUFError.invalid(field: "\(a) hyper-parameters", reason: "hidden and feed-forward sizes must be multiples of 32 for quantized weights")
        }
        guard layerCount <= 1024, hiddenSize <= 65536, intermediateSize <= 262_144, vocabularySize <= 4_000_000 else {
            throw GGUFError.invalid(field: "\(a) hyper-parameters", reason: "implausibly large")
        }
    }

    public var kvSize: Int { kvHeadCount * headDimension }
    /// Width of the queries and of the attention output: the heads side by side.
    public var querySize: Int { headCount * headDimension }
}

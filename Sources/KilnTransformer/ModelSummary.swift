import KilnFormats

/// What a GGUF file holds and whether Kiln can run it: the facts `kiln info MODEL.gguf` prints,
/// read from the metadata and tensor table without touching the weights.
public struct ModelSummary: Sendable {
    public struct TypeCount: Sendable {
        public var type: GGMLType
        public var tensors: Int
        public var parameters: Int
        /// Stored bits per weight of this type (block bytes · 8 / block weights).
        public var bitsPerWeight: Double
    }

    public var architecture: String
    public var name: String?
    public var parameters: Int
    /// Stored bits per weight over all tensors.
    public var bitsPerWeight: Double
    public var types: [TypeCount]
    public var contextLength: Int?
    public var vocabularySize: Int?
    public var tokenizerModel: String?
    public var hasChatTemplate: Bool
    /// Why Kiln cannot run the file (the first obstacle), or nil when it can.
    public var unsupported: String?

    /// The architectures Kiln's decoder runs (the registry's names).
    public static var supportedArchitectures: [String] { ModelArchitecture.registry.map(\.name) }

    public init(file: GGUFFile) {
        architecture = (try? file.string("general.architecture")) ?? "unknown"
        name = try? file.string("general.name")
        var byType: [UInt32: TypeCount] = [:]
        var bytes = 0
        for t in file.tensors {
            let geometry = t.type.blockGeometry ?? (1, 0)
            var entry = byType[t.type.rawValue] ?? TypeCount(type: t.type, tensors: 0, parameters: 0,
                                                            bitsPerWeight: Double(geometry.bytes * 8) / Double(geometry.elements))
            entry.tensors += 1
            entry.parameters += t.elementCount
            byType[t.type.rawValue] = entry
            bytes += t.byteCount
        }
        types = byType.values.sorted { $0.parameters > $1.parameters }
        parameters = types.reduce(0) { $0 + $1.parameters }
        bitsPerWeight = parameters > 0 ? Double(bytes * 8) / Double(parameters) : 0
        contextLength = try? file.integer("\(architecture).context_length")
        vocabularySize = (try? file.array("tokenizer.ggml.tokens"))?.count
        tokenizerModel = try? file.string("tokenizer.ggml.model")
        hasChatTemplate = file["tokenizer.chat_template"] != nil
        if !Self.supportedArchitectures.contains(architecture) {
            unsupported = "architecture \"\(architecture)\" (Kiln runs: \(Self.supportedArchitectures.joined(separator: ", ")))"
        } else if let t = file.tensors.first(where: { !$0.type.hasKernels }) {
            unsupported = "tensor \(t.name) has type \(t.type), which Kiln has no kernels for"
        } else {
            unsupported = nil
        }
    }
}

import Foundation
import KilnFormats
import KilnKernels
import KilnTestSupport
import KilnTransformer
import Testing

/// The tiny models (one per architecture), whose rows are all multiples of 256, against llama.cpp
/// (Tests/Fixtures/tiny/): Kiln rebuilds each F32 file the script wrote, quantizes it into
/// llama.cpp's very files (all 18 types for the Llama), and on each reproduces llama.cpp's logits
/// bit for bit and its 16 greedy tokens.
@Suite struct TinyModelTests {
    struct Record: Decodable {
        struct Entry: Decodable {
            let file_sha256: String
            let tensor_type_counts: [String: Int]
            let prompt_ids: [Int]
            let logits: String
            let argmax: Int
            let greedy: [Int]
        }
        let base_sha256: String
        let types: [String: Entry]
    }

    static let records: [TinyModel: Record] = Dictionary(uniqueKeysWithValues: TinyModel.allCases.map { model in
        (model, try! JSONDecoder().decode(Record.self, from: Data(contentsOf: Fixtures.url("tiny/tiny-\(model.rawValue).json"))))
    })
    static var record: Record { records[.llama]! }
    /// "ARCH TYPE" for every recorded quantized file.
    static let cases = TinyModel.allCases.flatMap { m in records[m]!.types.keys.filter { $0 != "F32" }.sorted().map { "\(m.rawValue) \($0)" } }

    /// The F32 bases, written once per test process and removed when it exits.
    static let bases: [TinyModel: String] = {
        guard FileManager.default.fileExists(atPath: TinyModel.vocabularyPath) else { return [:] }
        var paths: [TinyModel: String] = [:]
        for model in TinyModel.allCases {
            let path = TinyModel.basePath(model)
            guard (try? model.write(to: path)) != nil else { return [:] }
            paths[model] = path
        }
        atexit { for model in TinyModel.allCases { unlink(TinyModel.basePath(model)) } }
        return paths
    }()

    static func available(_ model: TinyModel = .llama) -> String? {
        if bases[model] == nil, Fixtures.isCI { Issue.record("missing \(TinyModel.vocabularyPath) (run scripts/setup)") }
        return bases[model]
    }

    @Test(arguments: TinyModel.allCases) func baseModelIsTheScriptsFile(model: TinyModel) throws {
        guard let base = Self.available(model) else { return }
        #expect(try SHA256Digest.hex(ofFile: base) == Self.records[model]!.base_sha256)
    }

    @Test(arguments: cases) func quantizedFileLogitsAndGreedyMatchLlamaCpp(model case: String) throws {
        let parts = `case`.split(separator: " ").map(String.init)
        let model = TinyModel(rawValue: parts[0])!, type = parts[1]
        guard let base = Self.available(model) else { return }
        let entry = Self.records[model]!.types[type]!
        let label = "\(model) \(type)"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tiny-\(getpid()).\(model).\(type).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ModelQuantizer.quantize(input: base, output: path, options: .init(scheme: QuantizationScheme.named(type)!))
        #expect(try SHA256Digest.hex(ofFile: path) == entry.file_sha256, "\(label): Kiln's file differs from llama-quantize's")
        let sequence = try QuantizedModelTests.expectTypesAndLogits(path: path, label: label, typeCounts: entry.tensor_type_counts,
                                                                    prompt: entry.prompt_ids, logits: Fixtures.url("tiny/\(entry.logits)"),
                                                                    argmax: entry.argmax)
        let generated = try LlamaCppRecording.greedy(sequence, prompt: entry.prompt_ids, steps: entry.greedy.count)
        let split = generated.indices.first { generated[$0] != entry.greedy[$0] }
        #expect(split == nil, "\(label): greedy differs from llama.cpp at step \(split ?? -1)")
    }

    /// Two sequences over one set of weights keep separate caches: interleaving them changes
    /// neither's logits, which equal llama.cpp's for the Q8_0 file — also for the prompt fed in
    /// two parts, since Q8_0's products and the batched attention keep each token's bits
    /// (what the server's prompt-prefix reuse relies on).
    @Test func sequencesShareWeightsButNotState() throws {
        guard let base = Self.available() else { return }
        let entry = Self.record.types["Q8_0"]!
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tiny-shared-\(getpid()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ModelQuantizer.quantize(input: base, output: path, options: .init(scheme: QuantizationScheme.named("Q8_0")!))
        let weights = try DecoderWeights(file: try GGUFFile(path: path))
        let first = DecoderSequence(weights: weights, contextSize: 64), second = DecoderSequence(weights: weights, contextSize: 64)
        let expected = try Data(contentsOf: Fixtures.url("tiny/\(entry.logits)")).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let prompt = entry.prompt_ids
        try first.forward(Array(prompt.prefix(prompt.count / 2)), startPosition: 0)
        try second.forward([prompt[0], prompt[0]], startPosition: 0)  // a different history in between
        try first.forward(Array(prompt.dropFirst(prompt.count / 2)), startPosition: prompt.count / 2)
        try second.forward(prompt, startPosition: 0)
        #expect(Array(second.logits) == expected)
        #expect(Array(first.logits) == expected)
    }

    /// Several sequences decoded in one `step` get, bit for bit, the logits each gets decoding
    /// alone with `forward` — for every architecture (windows, soft-caps, biases, fused tensors),
    /// with prompts of different lengths so the positions differ, and sequences that join late.
    @Test(arguments: TinyModel.allCases) func batchedStepsEqualLoneDecoding(model: TinyModel) throws {
        guard let base = Self.available(model) else { return }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tiny-step-\(getpid()).\(model).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ModelQuantizer.quantize(input: base, output: path, options: .init(scheme: QuantizationScheme.named("Q8_0")!))
        let weights = try DecoderWeights(file: try GGUFFile(path: path))
        let prompt = Self.records[model]!.types["Q8_0"]!.prompt_ids
        let prompts = [prompt, Array(prompt.prefix(2)), Array(prompt.reversed()) + [prompt[0]]]
        let steps = 10, vocabulary = weights.configuration.vocabularySize
        // Alone: the greedy tokens and every step's logits.
        var alone: [[[Float]]] = []
        for p in prompts {
            let s = DecoderSequence(weights: weights, contextSize: 64)
            try s.forward(p, startPosition: 0)
            var rows = [Array(s.logits)], history = p
            for _ in 0..<steps {
                let next = rows.last!.indices.max { rows.last![$0] < rows.last![$1] }!
                history.append(next)
                try s.forward([next], startPosition: history.count - 1)
                rows.append(Array(s.logits))
            }
            alone.append(rows)
        }
        // Together: the third sequence joins two steps late.
        let shared = DecoderSequence(weights: weights, contextSize: 64)
        #expect(shared.exactStepSize >= 3 && shared.splitPromptsKeepTheirBits)
        let caches = prompts.map { _ in shared.makeCache() }
        var histories = prompts, together: [[[Float]]] = [[], [], []]
        func prefill(_ i: Int) throws {
            try shared.forward(prompts[i], startPosition: 0, into: caches[i])
            together[i].append(Array(shared.logits))
        }
        try prefill(0)
        try prefill(1)
        for round in 0..<(steps + 2) {
            if round == 2 { try prefill(2) }
            let members = (0..<3).filter { together[$0].count > 0 && together[$0].count <= steps }
            let entries = members.map { i -> DecoderStepEntry in
                let last = together[i].last!
                let next = last.indices.max { last[$0] < last[$1] }!
                histories[i].append(next)
                return DecoderStepEntry(cache: caches[i], token: next, position: histories[i].count - 1)
            }
            guard !entries.isEmpty else { break }
            let logits = try shared.step(entries)
            for (row, i) in members.enumerated() { together[i].append(Array(logits[(row * vocabulary)..<((row + 1) * vocabulary)])) }
        }
        for i in 0..<3 {
            #expect(together[i] == alone[i], "\(model): sequence \(i) differs when batched")
        }
    }

    /// The registry reads each tiny file's windows, RoPE bases and soft-caps as llama.cpp does
    /// (which the logits above confirm: the 6-token prompt already crosses the 4-key windows).
    @Test func windowsAndCapsFollowTheRegistry() throws {
        func configuration(_ model: TinyModel) throws -> DecoderConfiguration? {
            guard let base = Self.available(model) else { return nil }
            return try DecoderConfiguration(gguf: try GGUFFile(path: base))
        }
        if let c = try configuration(.gemma3) {  // pattern 2: layer 0 windowed at the default base 10,000
            #expect(c.layerWindows == [4, nil] && c.ropeTheta(layer: 0) == 10_000 && c.ropeTheta(layer: 1) == 1_000_000)
            #expect(c.attentionScale == 1 / Float(128).squareRoot() && c.attentionSoftCap == nil && c.finalLogitSoftCap == nil)
        }
        if let c = try configuration(.gemma2) {  // default pattern 2, windowed layers at the global base
            #expect(c.layerWindows == [4, nil] && c.ropeTheta(layer: 0) == 10_000)
            #expect(c.attentionSoftCap == 2 && c.finalLogitSoftCap == 3 && c.attentionScale == 1 / 8)
        }
        if let c = try configuration(.phi3) {
            #expect(c.layerWindows == [nil, nil] && c.attentionSoftCap == nil)
        }
    }

    /// An architecture outside the registry is refused by name, listing the supported ones.
    @Test func unknownArchitectureIsNamed() throws {
        let metadata: [(key: String, value: GGUFValue)] = [("general.architecture", .string("mamba"))]
        let (header, _) = try GGUFEncoder.header(metadata: metadata, tensors: [])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-mamba-\(getpid()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(header).write(to: URL(fileURLWithPath: path))
        #expect(throws: GGUFError.invalid(field: "general.architecture", reason: "\"mamba\" is not supported (supported: llama, qwen2, qwen3, phi3, gemma2, gemma3)")) {
            _ = try DecoderWeights(file: try GGUFFile(path: path))
        }
    }

    /// Head sizes that contradict each other are refused by key before any buffer is sized.
    @Test func contradictoryHeadSizesAreNamed() throws {
        func configuration(_ extra: [(key: String, value: GGUFValue)], architecture a: String = "qwen3") throws -> DecoderConfiguration {
            let metadata: [(key: String, value: GGUFValue)] = [
                ("general.architecture", .string(a)), ("\(a).context_length", .uint32(64)),
                ("\(a).embedding_length", .uint32(256)), ("\(a).block_count", .uint32(1)),
                ("\(a).feed_forward_length", .uint32(256)), ("\(a).attention.head_count", .uint32(4)),
                ("\(a).attention.layer_norm_rms_epsilon", .float32(1e-6)), ("tokenizer.ggml.tokens", .array(.string(["a", "b"]))),
            ] + extra
            let (header, _) = try GGUFEncoder.header(metadata: metadata, tensors: [])
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-heads-\(getpid()).gguf").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try Data(header).write(to: URL(fileURLWithPath: path))
            return try DecoderConfiguration(gguf: try GGUFFile(path: path))
        }
        #expect(try configuration([("qwen3.attention.key_length", .uint32(128))]).querySize == 512)
        #expect(throws: GGUFError.invalid(field: "qwen3.attention.value_length", reason: "64 differs from the key length 128")) {
            _ = try configuration([("qwen3.attention.key_length", .uint32(128)), ("qwen3.attention.value_length", .uint32(64))])
        }
        #expect(throws: GGUFError.invalid(field: "qwen3.attention.head_count_kv", reason: "3 does not divide the head count 4")) {
            _ = try configuration([("qwen3.attention.head_count_kv", .uint32(3))])
        }
        // Sliding windows: none without the key (Gemma 3), none of zero keys or beyond the context.
        #expect(try configuration([], architecture: "gemma3").layerWindows == [nil])
        #expect(try configuration([("gemma3.attention.sliding_window", .uint32(8))], architecture: "gemma3").layerWindows == [8])
        for bad: UInt32 in [0, 65] {
            #expect(throws: GGUFError.invalid(field: "gemma3.attention.sliding_window", reason: "\(bad) is not a window within the context of 64")) {
                _ = try configuration([("gemma3.attention.sliding_window", .uint32(bad))], architecture: "gemma3")
            }
        }
        #expect(throws: GGUFError.invalid(field: "gemma3.attention.sliding_window_pattern", reason: "2 flags for 1 layers")) {
            _ = try configuration([("gemma3.attention.sliding_window", .uint32(8)),
                                   ("gemma3.attention.sliding_window_pattern", .array(.bool([true, false])))], architecture: "gemma3")
        }
    }

    /// A tensor of a type Kiln has no kernels for (IQ2_XXS) is named with its type by the model
    /// loader, by `kiln info`'s summary and by the quantizer, never a trap.
    @Test func unimplementedTensorTypeIsNamed() throws {
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")), ("llama.context_length", .uint32(64)),
            ("llama.embedding_length", .uint32(256)), ("llama.block_count", .uint32(1)),
            ("llama.feed_forward_length", .uint32(256)), ("llama.attention.head_count", .uint32(4)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)), ("tokenizer.ggml.tokens", .array(.string(["a", "b"]))),
        ]
        let tensors = [GGUFEncoder.TensorEntry(name: "blk.0.attn_norm.weight", shape: [256], type: .f32),
                       GGUFEncoder.TensorEntry(name: "blk.0.attn_q.weight", shape: [256, 256], type: GGMLType(rawValue: 16))]
        let (header, _) = try GGUFEncoder.header(metadata: metadata, tensors: tensors)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-iq2-\(getpid()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var bytes = header + [UInt8](repeating: 0, count: 1024)
        let normOnes = [Float](repeating: 1, count: 256)
        normOnes.withUnsafeBytes { bytes.replaceSubrange(header.count..<(header.count + 1024), with: $0) }
        bytes += [UInt8](repeating: 0, count: tensors[1].byteCount!)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let file = try GGUFFile(path: path)
        #expect(throws: GGUFError.unsupportedTensorType(tensor: "blk.0.attn_q.weight", type: GGMLType(rawValue: 16))) {
            _ = try DecoderSequence(file: file)
        }
        #expect(ModelSummary(file: file).unsupported?.contains("blk.0.attn_q.weight has type IQ2_XXS") == true)
        let error = #expect(throws: ModelQuantizer.Failure.self) {
            _ = try ModelQuantizer.plan(file, options: .init(scheme: QuantizationScheme.named("Q8_0")!, allowRequantize: true))
        }
        #expect(error?.description == "tensor blk.0.attn_q.weight has type IQ2_XXS, which Kiln cannot convert to Q8_0")
    }
}

import ArgumentParser
import Foundation
import KilnServices
import KilnFormats
import KilnKernels
import KilnTokenizers
import KilnTransformer

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt with a GGUF language model.",
        discussion: """
            Sampling runs penalties → top-k → top-p → min-p → temperature → draw; --temperature 0 \
            is greedy. Text streams to stdout as it is produced.
            """
    )

    @Option(help: ArgumentHelp("A .gguf language model (architectures: \(ModelArchitecture.registry.map(\.name).joined(separator: ", "))).")) var model = ModelLocator.defaultLanguageModel
    @Option(help: "The prompt text.") var prompt: String?
    @Option(help: "Read the prompt from a file (UTF-8).") var promptFile: String?
    @Option(help: "The prompt as token ids, e.g. 1,2,3.") var promptTokens: String?
    @Flag(help: "Wrap the prompt as a user message in the model's chat template.") var chat = false
    @Option(help: "A system message (with --chat).") var system: String?
    @Option(help: "With --chat: a Jinja template file, or \"chatml\", for a model without its own template.")
    var chatTemplate: String?
    @Option(help: "Tokens to generate at most.") var maxTokens = 128
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(help: "Keep the k most likely tokens (0: all).") var topK = 40
    @Option(help: "Keep the smallest set with this cumulative probability.") var topP: Float = 0.95
    @Option(help: "Drop tokens below this fraction of the top probability.") var minP: Float = 0.05
    @Option(help: "Repetition penalty over the last --repeat-last-n tokens (1: off).") var repeatPenalty: Float = 1.0
    @Option(help: "Tokens the penalties look back over.") var repeatLastN = 64
    @Option(help: "Presence penalty.") var presencePenalty: Float = 0
    @Option(help: "Frequency penalty.") var frequencyPenalty: Float = 0
    @Option(help: "Random seed (same seed, same output).") var seed: UInt64 = 0
    @Option(help: "Stop when this text appears (repeatable).") var stop: [String] = []
    @Flag(help: "Keep going past end-of-generation tokens.") var ignoreEos = false
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "Context size in tokens.") var context = 2048
    @Flag(help: "Print one JSON object at the end instead of streaming.") var json = false
    @Option(help: "Write the last prompt position's logits here (little-endian float32).") var logitsOut: String?

    func validate() throws {
        guard [prompt, promptFile, promptTokens].compactMap({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --prompt, --prompt-file and --prompt-tokens")
        }
        if chat && promptTokens != nil { throw ValidationError("--chat needs a text prompt") }
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be non-negative") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be non-negative") }
        guard (0...1).contains(topP), (0...1).contains(minP) else { throw ValidationError("--top-p and --min-p must be in 0…1") }
        guard context > 0 else { throw ValidationError("--context must be positive") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let loadStart = monotonicNanoseconds()
        let pool = threads.map { ThreadPool(threadCount: $0) } ?? ThreadPool.shared
        let textModel = try loadTextModel(model)
        let tokenizer = textModel.tokenizer
        let sequence = textModel.sequence(contextSize: context, pool: pool)
        let loadSeconds = Double(monotonicNanoseconds() - loadStart) * 1e-9
        let promptIds = try promptTokenIds(textModel)
        guard !promptIds.isEmpty else { throw CLIError("the prompt has no tokens") }
        guard promptIds.count + maxTokens <= context else {
            throw CLIError("the prompt (\(promptIds.count) tokens) plus --max-tokens \(maxTokens) exceed the context of \(context); raise --context")
        }
        var sampling = SamplingParameters()
        sampling.temperature = temperature
        sampling.topK = topK
        sampling.topP = topP
        sampling.minP = minP
        sampling.repetitionPenalty = repeatPenalty
        sampling.penaltyWindow = repeatLastN
        sampling.presencePenalty = presencePenalty
        sampling.frequencyPenalty = frequencyPenalty
        let generator = TokenGenerator(model: sequence, tokenizer: tokenizer)
        if let logitsOut {
            try sequence.forward(promptIds, startPosition: 0)
            try writeAtomically(Data(buffer: sequence.logits), to: logitsOut)
        }
        let result: TokenGenerator.Result
        do {
            result = try generator.generate(
                prompt: promptIds, maxTokens: maxTokens, sampling: sampling, seed: seed, stopStrings: stop,
                ignoreEndOfGeneration: ignoreEos
            ) { text in
                if !json {
                    FileHandle.standardOutput.write(Data(text.utf8))
                }
            }
        } catch {
            throw CLIError("\(error)")
        }
        if json {
            struct Timings: Encodable {
                let load_s: Double, prefill_tokens_per_s: Double, decode_tokens_per_s: Double, peak_rss_mb: Double
            }
            struct Output: Encodable {
                let prompt_tokens: [Int], tokens: [Int], text: String, stop_reason: String, timings: Timings
            }
            let decoded = max(1, result.tokens.count - 1)
            let output = Output(
                prompt_tokens: promptIds, tokens: result.tokens, text: result.text, stop_reason: result.stopReason.rawValue,
                timings: Timings(load_s: loadSeconds, prefill_tokens_per_s: Double(promptIds.count) / max(1e-9, result.prefillSeconds),
                                 decode_tokens_per_s: Double(decoded) / max(1e-9, result.decodeSeconds), peak_rss_mb: peakResidentMegabytes()))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            print("")
        }
    }

    func promptTokenIds(_ textModel: TextModel) throws -> [Int] {
        if let promptTokens {
            return try promptTokens.split(separator: ",").map { field in
                guard let id = Int(field.trimmingCharacters(in: .whitespaces)), (0..<textModel.vocabularySize).contains(id) else {
                    throw CLIError("\"\(field)\" in --prompt-tokens is not a token id of this model (0..<\(textModel.vocabularySize))")
                }
                return id
            }
        }
        var text = prompt ?? ""
        if let promptFile {
            let data = try readFile(promptFile)
            guard let decoded = String(validating: [UInt8](data), as: UTF8.self) else { throw CLIError("\(promptFile) is not valid UTF-8") }
            text = decoded.hasSuffix("\n") ? String(decoded.dropLast()) : decoded
        }
        guard chat else { return textModel.tokenizer.encode(text, addSpecial: true, parseSpecial: true) }
        var messages: [ChatTemplate.Message] = []
        if let system { messages.append(.init(role: "system", content: system)) }
        messages.append(.init(role: "user", content: text))
        do {
            return try textModel.chatPrompt(messages, template: try textModel.chatTemplate(override: chatTemplate))
        } catch {
            throw CLIError("\(error)")
        }
    }
}

/// Writes durably and atomically (see DurableFile), as a CLI error on failure.
func writeAtomically(_ data: Data, to path: String) throws {
    do {
        try DurableFile.write(data, to: path)
    } catch {
        throw CLIError("\(error)")
    }
}

/// Peak resident set size of this process (VmHWM), in MB.
func peakResidentMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb / 1024
}

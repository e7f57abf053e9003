import ArgumentParser
import Foundation
import KilnServices
import KilnFormats
import KilnKernels
import KilnTokenizers
import KilnTransformer

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a GGUF model in the terminal (/reset starts over, /exit leaves).",
        discussion: "Earlier turns stay in the KV cache; only the new part of the conversation is evaluated."
    )

    @Option(help: ArgumentHelp("A .gguf language model (architectures: \(ModelArchitecture.registry.map(\.name).joined(separator: ", "))).")) var model = ModelLocator.defaultLanguageModel
    @Option(help: "A Jinja template file, or \"chatml\", when the model has no template.") var chatTemplate: String?
    @Option(help: "A system message.") var system: String?
    @Option(help: "Tokens per reply at most.") var maxTokens = 256
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0.7
    @Option(help: "Top-k.") var topK = 40
    @Option(help: "Top-p.") var topP: Float = 0.95
    @Option(help: "Min-p.") var minP: Float = 0.05
    @Option(help: "Repetition penalty.") var repeatPenalty: Float = 1.1
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Context size in tokens.") var context = 2048

    func run() throws {
        let textModel = try loadTextModel(model)
        let tokenizer = textModel.tokenizer
        let sequence = textModel.sequence(contextSize: context)
        let template: ChatTemplate
        do { template = try textModel.chatTemplate(override: chatTemplate) } catch { throw CLIError("\(error)") }
        var sampling = SamplingParameters()
        (sampling.temperature, sampling.topK, sampling.topP, sampling.minP, sampling.repetitionPenalty) =
            (temperature, topK, topP, minP, repeatPenalty)
        let generator = TokenGenerator(model: sequence, tokenizer: tokenizer)
        var messages: [ChatTemplate.Message] = system.map { [.init(role: "system", content: $0)] } ?? []
        var cached: [Int] = []  // tokens whose keys and values are in the cache
        var turn: UInt64 = 0
        print("Chatting with \(model) — /reset starts over, /exit leaves.")
        while true {
            print("> ", terminator: "")
            fflush(nil)  // show the prompt before waiting for input
            guard let line = readLine() else { break }
            let input = line.trimmingCharacters(in: .whitespaces)
            if input == "/exit" || input == "/quit" { break }
            if input == "/reset" {
                messages = system.map { [.init(role: "system", content: $0)] } ?? []
                cached = []
                print("(conversation cleared)")
                continue
            }
            if input.isEmpty { continue }
            messages.append(.init(role: "user", content: input))
            let prompt: [Int]
            do {
                prompt = try textModel.chatPrompt(messages, template: template)
            } catch {
                messages.removeLast()
                print("(the chat template failed: \(error))")
                continue
            }
            guard prompt.count + maxTokens <= context else {
                messages.removeLast()
                print("(the conversation no longer fits: \(prompt.count) prompt tokens + up to \(maxTokens) for the reply exceed the context of \(context) tokens; /reset to start over)")
                continue
            }
            let shared = zip(cached, prompt).prefix { $0 == $1 }.count
            do {
                let reply = try generator.generate(prompt: prompt, cachedPrefix: shared, maxTokens: maxTokens, sampling: sampling,
                                                   seed: seed &+ turn) { text in
                    print(text, terminator: "")
                    fflush(nil)
                }
                print("")
                if reply.stopReason == .length { print("(reply cut at --max-tokens \(maxTokens))") }
                messages.append(.init(role: "assistant", content: reply.text))
                cached = reply.cachedTokens
            } catch {
                messages.removeLast()
                print("(\(error))")
            }
            turn += 1
        }
    }
}

/// The GGUF language model at `path` (found through ModelLocator), or an error naming it.
func loadTextModel(_ path: String) throws -> TextModel {
    let url = URL(fileURLWithPath: try modelPath(path))
    do {
        return try TextModel(path: url)
    } catch {
        throw CLIError("\(path): \(error)")
    }
}

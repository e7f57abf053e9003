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
        let file: GGUFFile, tokenizer: any Tokenizer, sequence: DecoderSequence
        do {
            file = try GGUFFile(path: try modelPath(model))
            tokenizer = try GGUFTokenizer.load(from: file)
            sequence = try DecoderSequence(file: file, contextSize: context)
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(model): \(error)")
        }
        let source = try chatTemplateSource(file: file, model: model, override: chatTemplate)
        let template: ChatTemplate
        do { template = try ChatTemplate(source) } catch { throw CLIError("the chat template does not parse: \(error)") }
        var sampling = SamplingParameters()
        (sampling.temperature, sampling.topK, sampling.topP, sampling.minP, sampling.repetitionPenalty) =
            (temperature, topK, topP, minP, repeatPenalty)
        let generator = TokenGenerator(model: sequence, tokenizer: tokenizer)
        let (bos, eos) = templateMarkers(tokenizer)
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
                let rendered = try template.render(messages: messages, addGenerationPrompt: true, bosToken: bos, eosToken: eos)
                prompt = tokenizer.encode(rendered, addSpecial: false, parseSpecial: true)
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
                cached = prompt + reply.tokens
            } catch {
                messages.removeLast()
                print("(\(error))")
            }
            turn += 1
        }
    }
}

/// ChatML, the template named "chatml" for models that carry none.
let chatMLTemplate = """
    {% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
    """

/// A template by name ("chatml") or from a file.
func loadChatTemplate(_ nameOrPath: String) throws -> String {
    if nameOrPath == "chatml" { return chatMLTemplate }
    let data = try readFile(nameOrPath)
    guard let text = String(validating: [UInt8](data), as: UTF8.self) else { throw CLIError("\(nameOrPath) is not valid UTF-8") }
    return text
}

/// The template a model is chatted with: `override` (a file or "chatml") if given, else the
/// GGUF's own `tokenizer.chat_template`; a model with neither is an error.
func chatTemplateSource(file: GGUFFile, model: String, override: String?) throws -> String {
    if let override { return try loadChatTemplate(override) }
    guard case .string(let own)? = file["tokenizer.chat_template"] else {
        throw CLIError("\(model) has no chat template; pass --chat-template FILE or --chat-template chatml")
    }
    return own
}

/// The BOS and EOS texts a chat template receives as bos_token and eos_token.
func templateMarkers(_ tokenizer: any Tokenizer) -> (bos: String, eos: String) {
    (tokenizer.specialTokens.bos.flatMap { tokenizer.piece(for: $0) } ?? "",
     tokenizer.specialTokens.eos.flatMap { tokenizer.piece(for: $0) } ?? "")
}

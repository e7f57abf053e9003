import Foundation
import KilnFormats
import KilnKernels
import KilnTokenizers
import KilnTransformer

/// A GGUF language model ready for prompts: weights loaded once and shared by every sequence
/// made from them, its tokenizer, and its chat template — what `kiln generate`, `kiln chat` and
/// the server share.
public final class TextModel: @unchecked Sendable {  // immutable after init
    /// The file's name without `.gguf`, as clients name the model.
    public let name: String
    public let path: URL
    public let weights: DecoderWeights
    public let tokenizer: any Tokenizer

    public var file: GGUFFile { weights.file }
    public var vocabularySize: Int { weights.configuration.vocabularySize }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init(path: URL) throws {
        self.path = path
        name = path.deletingPathExtension().lastPathComponent
        let file = try GGUFFile(path: path.path)
        tokenizer = try GGUFTokenizer.load(from: file)
        weights = try DecoderWeights(file: file)
    }

    /// A new sequence (its own KV cache and scratch) over the shared weights.
    public func sequence(contextSize: Int, pool: ThreadPool = .shared) -> DecoderSequence {
        DecoderSequence(weights: weights, contextSize: contextSize, pool: pool)
    }

    // MARK: Chat

    /// ChatML, for models that carry no template.
    public static let chatML = """
        {% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
        """

    /// The template to chat with: `override` ("chatml" or a template file) if given, else the
    /// GGUF's own `tokenizer.chat_template`; a model with neither is an error.
    public func chatTemplate(override: String? = nil) throws -> ChatTemplate {
        let source: String
        if override == "chatml" {
            source = Self.chatML
        } else if let override {
            guard let data = FileManager.default.contents(atPath: override) else { throw Failure(description: "cannot read \(override)") }
            guard let text = String(validating: [UInt8](data), as: UTF8.self) else { throw Failure(description: "\(override) is not valid UTF-8") }
            source = text
        } else if case .string(let own)? = file["tokenizer.chat_template"] {
            source = own
        } else {
            throw Failure(description: "\(name) has no chat template; pass --chat-template FILE or --chat-template chatml")
        }
        do {
            return try ChatTemplate(source)
        } catch {
            throw Failure(description: "the chat template does not parse: \(error)")
        }
    }

    /// The BOS and EOS texts a chat template receives as bos_token and eos_token.
    public var templateMarkers: (bos: String, eos: String) {
        (tokenizer.specialTokens.bos.flatMap { tokenizer.piece(for: $0) } ?? "",
         tokenizer.specialTokens.eos.flatMap { tokenizer.piece(for: $0) } ?? "")
    }

    /// The token ids of a conversation rendered through `template`, ready for the assistant's turn
    /// (`addGenerationPrompt`).
    public func chatPrompt(_ messages: [ChatTemplate.Message], template: ChatTemplate, addGenerationPrompt: Bool = true) throws -> [Int] {
        let (bos, eos) = templateMarkers
        let rendered: String
        do {
            rendered = try template.render(messages: messages, addGenerationPrompt: addGenerationPrompt, bosToken: bos, eosToken: eos)
        } catch {
            throw Failure(description: "the model's chat template cannot be rendered: \(error)")
        }
        return tokenizer.encode(rendered, addSpecial: false, parseSpecial: true)
    }
}

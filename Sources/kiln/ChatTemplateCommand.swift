import ArgumentParser
import Foundation
import KilnFormats
import KilnTokenizers

struct ChatTemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-template",
        abstract: "Render a conversation through a model's chat template.",
        discussion: """
            The messages file is a JSON list of {"role": …, "content": …} objects. With --model the \
            template is the GGUF's tokenizer.chat_template (or a folder's tokenizer_config.json \
            chat_template) and BOS/EOS default to the model's own tokens.
            """
    )

    @Option(help: "A .gguf model, or a folder with tokenizer_config.json.") var model: String?
    @Option(help: "A Jinja template file instead of a model's.") var template: String?
    @Option(help: "The conversation: a JSON list of {\"role\", \"content\"}.") var messages: String
    @Flag(help: "Do not add the assistant turn's opening.") var noGenerationPrompt = false
    @Option(help: "The BOS token text the template sees.") var bosToken: String?
    @Option(help: "The EOS token text the template sees.") var eosToken: String?
    @Flag(help: "Print {\"prompt\": …}.") var json = false

    func validate() throws {
        guard (model == nil) != (template == nil) else { throw ValidationError("give exactly one of --model and --template") }
    }

    func run() throws {
        let (source, defaults) = try templateSource()
        let data = try readFile(messages)
        let conversation: [ChatTemplate.Message]
        do {
            conversation = try JSONDecoder().decode([ChatTemplate.Message].self, from: data)
        } catch {
            throw CLIError("\(messages) is not a JSON list of {\"role\": string, \"content\": string}: \(error)")
        }
        let rendered: String
        do {
            rendered = try ChatTemplate(source).render(
                messages: conversation, addGenerationPrompt: !noGenerationPrompt,
                bosToken: bosToken ?? defaults.bos, eosToken: eosToken ?? defaults.eos)
        } catch {
            throw CLIError("the chat template cannot be rendered: \(error)")
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(["prompt": rendered]), as: UTF8.self))
        } else {
            print(rendered, terminator: rendered.hasSuffix("\n") ? "" : "\n")
        }
    }

    /// The template text and the BOS/EOS strings the model itself would pass.
    func templateSource() throws -> (String, (bos: String, eos: String)) {
        if let template {
            let data = try readFile(template)
            guard let text = String(validating: [UInt8](data), as: UTF8.self) else { throw CLIError("\(template) is not valid UTF-8") }
            return (text, ("", ""))
        }
        let path = model!
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CLIError("no such file or folder: \(path)") }
        if isDirectory.boolValue {
            let config = URL(fileURLWithPath: path).appendingPathComponent("tokenizer_config.json")
            struct Config: Decodable {
                let chat_template: String?
                let bos_token: String?
                let eos_token: String?
            }
            guard let data = try? Data(contentsOf: config), let parsed = try? JSONDecoder().decode(Config.self, from: data),
                  let text = parsed.chat_template else {
                throw CLIError("\(path) has no chat template (tokenizer_config.json has no chat_template string); pass --template")
            }
            return (text, (parsed.bos_token ?? "", parsed.eos_token ?? ""))
        }
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw CLIError("\(path): \(error)") }
        guard case .string(let text)? = file["tokenizer.chat_template"] else {
            throw CLIError("\(path) has no tokenizer.chat_template; pass --template")
        }
        let tokens = (try? file.strings("tokenizer.ggml.tokens")) ?? []
        func token(_ key: String) -> String {
            guard let id = file[key]?.integer, tokens.indices.contains(id) else { return "" }
            return tokens[id]
        }
        return (text, (token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id")))
    }
}

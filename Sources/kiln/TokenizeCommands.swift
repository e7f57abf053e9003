import ArgumentParser
import Foundation
import KilnServices
import KilnTokenizers
import KilnTransformer

/// The tokenizer source shared by the tokenizer commands.
struct TokenizerArguments: ParsableArguments {
    @Option(help: "A .gguf model, a tokenizer.json (or a folder with one), or a SentencePiece .model.")
    var model: String = ModelLocator.defaultLanguageModel

    func load() throws -> any Tokenizer {
        do {
            return try TokenizerLoader.load(path: try modelPath(model))
        } catch {
            throw CLIError("\(error)")
        }
    }
}

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Show the token ids and pieces of a text.")

    @OptionGroup var tokenizer: TokenizerArguments
    @Option(help: "The text to tokenize.") var text: String?
    @Option(help: "Read the text from a file (UTF-8).") var file: String?
    @Flag(help: "Treat special-token text such as <|im_end|> as plain characters.") var noSpecial = false
    @Flag(help: "Add the model's own markers (BOS, [CLS]/[SEP], …).") var addSpecial = false
    @Flag(help: "Print {\"ids\":[…],\"pieces\":[…]}.") var json = false

    func validate() throws {
        guard (text == nil) != (file == nil) else { throw ValidationError("give exactly one of --text and --file") }
    }

    func run() throws {
        let input: String
        if let text {
            input = text
        } else {
            let data = try readFile(file!)
            guard let decoded = String(validating: [UInt8](data), as: UTF8.self) else {
                throw CLIError("\(file!) is not valid UTF-8")
            }
            input = decoded
        }
        let t = try tokenizer.load()
        let ids = t.encode(input, addSpecial: addSpecial, parseSpecial: !noSpecial)
        let pieces = ids.map { t.piece(for: $0) ?? "" }
        if json {
            struct Output: Encodable { let ids: [Int]; let pieces: [String] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
            print(String(decoding: try encoder.encode(Output(ids: ids, pieces: pieces)), as: UTF8.self))
        } else {
            for (id, piece) in zip(ids, pieces) { print(String(id).padding(toLength: 8, withPad: " ", startingAt: 0) + piece.debugDescription) }
            print("\(ids.count) tokens")
        }
    }
}

struct DetokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detokenize", abstract: "Turn token ids back into text.")

    @OptionGroup var tokenizer: TokenizerArguments
    @Option(help: "Comma-separated token ids, e.g. 1,2,3.") var ids: String
    @Flag(help: "Drop control tokens instead of writing their text.") var skipSpecial = false

    func run() throws {
        let t = try tokenizer.load()
        var parsed: [Int] = []
        for field in ids.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = field.trimmingCharacters(in: .whitespaces)
            guard let id = Int(trimmed) else { throw CLIError("\"\(trimmed)\" in --ids is not an integer") }
            guard (0..<t.vocabularySize).contains(id) else {
                throw CLIError("token id \(id) is outside the vocabulary of \(t.vocabularySize)")
            }
            parsed.append(id)
        }
        print(try t.decode(parsed, skipSpecial: skipSpecial))
    }
}

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer", abstract: "Work with tokenizer models.", subcommands: [TrainTokenizerCommand.self])
}

struct TrainTokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a SentencePiece model on text files.")

    @Option(name: .long, parsing: .upToNextOption, help: "Training text files (UTF-8, one sentence per line).")
    var input: [String]
    @Option(help: "Vocabulary size.") var vocabSize: Int
    @Option(help: "bpe or unigram.") var modelType: String = "bpe"
    @Option(help: "Where to write the model (must end in .model); the .vocab goes beside it.") var output: String
    @Flag(help: "Show the SentencePiece library's own log.") var verbose = false

    func validate() throws {
        guard !input.isEmpty else { throw ValidationError("give at least one --input file") }
        guard vocabSize >= 1 else { throw ValidationError("--vocab-size must be positive") }
        guard SentencePieceTokenizer.ModelType(rawValue: modelType) != nil else {
            throw ValidationError("--model-type must be bpe or unigram, got \(modelType)")
        }
        guard output.hasSuffix(".model") else { throw ValidationError("--output must end in .model") }
    }

    func run() throws {
        let progress = ElapsedProgress(label: "training \(modelType) tokenizer, vocabulary \(vocabSize)", quiet: verbose)
        defer { progress.stop() }
        do {
            try SentencePieceTokenizer.train(inputs: input, vocabularySize: vocabSize,
                                             modelType: SentencePieceTokenizer.ModelType(rawValue: modelType)!,
                                             output: output, verbose: verbose)
        } catch {
            throw CLIError("\(error)")
        }
        progress.stop()
        let model = try SentencePieceTokenizer(path: output)
        print("wrote \(output) (\(model.vocabularySize) pieces)")
    }
}

func readFile(_ path: String) throws -> Data {
    do {
        return try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw CLIError("cannot read \(path): \(error.localizedDescription)")
    }
}

import Foundation
import KilnFormats
import KilnTokenizers

/// Opens a tokenizer from what a user points at: a `.gguf` model, a `tokenizer.json` (or a
/// folder holding one), or a SentencePiece `.model`.
public enum TokenizerLoader {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case notFound(String)
        case unrecognized(String)

        public var description: String {
            switch self {
            case .notFound(let path): return "no such file or folder: \(path)"
            case .unrecognized(let path):
                return "\(path) is not a tokenizer Kiln can open (expected a .gguf, a tokenizer.json or a folder with one, or a SentencePiece .model)"
            }
        }
    }

    public static func load(path: String) throws -> any Tokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw Failure.notFound(path) }
        if isDirectory.boolValue {
            let json = URL(fileURLWithPath: path).appendingPathComponent("tokenizer.json")
            guard FileManager.default.fileExists(atPath: json.path) else { throw Failure.unrecognized(path) }
            return try TokenizerJSON.load(contentsOf: json)
        }
        if path.hasSuffix(".json") { return try TokenizerJSON.load(contentsOf: URL(fileURLWithPath: path)) }
        if path.hasSuffix(".model") { return try SentencePieceTokenizer(path: path) }
        if path.hasSuffix(".gguf") || Self.startsWithGGUFMagic(path) { return try GGUFTokenizer.load(from: try GGUFFile(path: path)) }
        throw Failure.unrecognized(path)
    }

    static func startsWithGGUFMagic(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data("GGUF".utf8)
    }
}

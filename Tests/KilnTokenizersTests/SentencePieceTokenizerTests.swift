import Foundation
import KilnTestSupport
import KilnTokenizers
import Testing

/// The SentencePiece library behind the Tokenizer protocol: train, load, round-trip, special
/// tokens, and refusal of files that are not models.
@Suite struct SentencePieceTokenizerTests {
    static func trainedModel(_ type: SentencePieceTokenizer.ModelType) throws -> (URL, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-spm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let corpus = directory.appendingPathComponent("corpus.txt")
        var rng = SeededGenerator(seed: 9)
        let words = ["glaze", "kiln", "clay", "fire", "pot", "wheel", "the", "a", "hot", "cool", "café", "陶器", "2024"]
        let text = (0..<500).map { _ in (0..<8).map { _ in words.randomElement(using: &rng)! }.joined(separator: " ") }
        try text.joined(separator: "\n").write(to: corpus, atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("m.model").path
        try SentencePieceTokenizer.train(inputs: [corpus.path], vocabularySize: 320, modelType: type, output: output)
        return (directory, output)
    }

    @Test(arguments: SentencePieceTokenizer.ModelType.allCases) func trainsLoadsAndRoundTrips(type: SentencePieceTokenizer.ModelType) throws {
        let (directory, output) = try Self.trainedModel(type)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(FileManager.default.fileExists(atPath: output))
        #expect(FileManager.default.fileExists(atPath: String(output.dropLast(6)) + ".vocab"))
        let tokenizer = try SentencePieceTokenizer(path: output)
        #expect(tokenizer.vocabularySize > 256 && tokenizer.vocabularySize <= 320)
        let text = "the hot kiln fires café clay ✓ 陶器"
        let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        #expect(try tokenizer.decode(ids, skipSpecial: true) == text)
        let withBOS = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        #expect(withBOS.first == tokenizer.specialTokens.bos && Array(withBOS.dropFirst()) == ids)
        // "</s>" is plain text unless special parsing is on.
        let eos = try #require(tokenizer.specialTokens.eos)
        #expect(!tokenizer.encode("clay</s>", addSpecial: false, parseSpecial: false).contains(eos))
        #expect(tokenizer.encode("clay</s>", addSpecial: false, parseSpecial: true).last == eos)
        #expect(try tokenizer.decode([eos], skipSpecial: false) == "</s>")
        #expect(try tokenizer.decode([eos], skipSpecial: true) == "")
    }

    @Test func refusesFilesThatAreNotModels() throws {
        let (directory, output) = try Self.trainedModel(.bpe)
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = try Data(contentsOf: URL(fileURLWithPath: output))
        let cases: [(Data, String)] = [
            (Data(), "empty"),
            (good.prefix(good.count / 2), "claims more bytes than the file holds"),
            (Data("GGUF\u{3}\0\0\0not a sentencepiece model".utf8), "not a SentencePiece model"),
            (Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }), "not a SentencePiece model"),
        ]
        for (data, fragment) in cases {
            #expect { _ = try SentencePieceTokenizer(serialized: data) } throws: { "\($0)".contains(fragment) }
        }
        #expect { _ = try SentencePieceTokenizer(path: "/nonexistent/kiln.model") } throws: { "\($0)".contains("cannot read") }
    }

    @Test func trainingRejectsBadArguments() {
        #expect { try SentencePieceTokenizer.train(inputs: ["/nonexistent.txt"], vocabularySize: 100, modelType: .bpe, output: "/tmp/x.model") }
            throws: { "\($0)".contains("cannot read input") }
        #expect { try SentencePieceTokenizer.train(inputs: [], vocabularySize: 100, modelType: .bpe, output: "/tmp/x.model") }
            throws: { "\($0)".contains("no input") }
    }
}

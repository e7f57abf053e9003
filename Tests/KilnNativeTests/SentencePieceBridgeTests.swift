import CKilnSentencePiece
import Foundation
import KilnTestSupport
import Testing

/// The C bridge over libsentencepiece: train a small model, load it, round-trip text, and turn
/// bad input into status codes with messages instead of C++ exceptions or crashes.
@Suite struct SentencePieceBridgeTests {
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-sp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The NUL-terminated message in a C buffer.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func corpus() -> String {
        let words = ["kiln", "fires", "clay", "into", "pottery", "the", "glaze", "melts", "at", "high", "heat",
                     "über", "naïve", "café", "東京", "数字", "12345", "tokenizer", "bridge", "sentence", "piece"]
        var rng = SeededGenerator(seed: 5)
        return (0..<400).map { _ in
            (0..<Int.random(in: 4...12, using: &rng)).map { _ in words.randomElement(using: &rng)! }.joined(separator: " ")
        }.joined(separator: "\n")
    }

    @Test(arguments: ["bpe", "unigram"]) func trainLoadEncodeDecode(modelType: String) throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("corpus.txt")
        try Self.corpus().write(to: input, atomically: true, encoding: .utf8)
        let prefix = directory.appendingPathComponent("m").path
        kiln_sp_set_log_level(2)
        var error = [CChar](repeating: 0, count: 512)
        let arguments = "--input=\(input.path) --model_prefix=\(prefix) --vocab_size=320 --hard_vocab_limit=false --model_type=\(modelType) --character_coverage=1.0 --byte_fallback=true"
        let status = kiln_sp_train(arguments, &error, error.count)
        let message = Self.text(error)
        #expect(status == KILN_SP_OK, "\(message)")

        let processor = try #require(kiln_sp_create())
        defer { kiln_sp_destroy(processor) }
        #expect(kiln_sp_load_file(processor, prefix + ".model") == KILN_SP_OK)
        #expect(kiln_sp_piece_count(processor) <= 320 && kiln_sp_piece_count(processor) > 293)
        #expect(kiln_sp_piece_kind(processor, kiln_sp_unk_id(processor)) == KILN_SP_PIECE_UNKNOWN)
        #expect(kiln_sp_bos_id(processor) >= 0 && kiln_sp_eos_id(processor) >= 0)

        let text = "the kiln fires café pottery 東京 ✓"
        var ids = [Int32](repeating: 0, count: 4)
        var count = 0
        let utf8 = Array(text.utf8)
        // Too small a buffer reports the needed size, then the real call fills it.
        var needed = kiln_sp_encode(processor, text, utf8.count, &ids, ids.count, &count)
        if needed == KILN_SP_BUFFER_TOO_SMALL {
            ids = [Int32](repeating: 0, count: count)
            needed = kiln_sp_encode(processor, text, utf8.count, &ids, ids.count, &count)
        }
        #expect(needed == KILN_SP_OK)
        #expect(ids.allSatisfy { $0 >= 0 && $0 < kiln_sp_piece_count(processor) })
        var decoded = [CChar](repeating: 0, count: 256)
        var length = 0
        #expect(kiln_sp_decode(processor, ids, count, &decoded, decoded.count, &length) == KILN_SP_OK)
        let roundTrip = String(decoding: decoded.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(roundTrip == text)  // byte fallback makes the unseen ✓ survive

        let piece = try #require(kiln_sp_id_to_piece(processor, ids[0]))
        #expect(kiln_sp_piece_to_id(processor, piece, strlen(piece)) == ids[0])
        #expect(kiln_sp_id_to_piece(processor, kiln_sp_piece_count(processor)) == nil)
    }

    @Test func badInputIsAStatusNotACrash() throws {
        let processor = try #require(kiln_sp_create())
        defer { kiln_sp_destroy(processor) }
        var ids = [Int32](repeating: 0, count: 4)
        var count = 0
        #expect(kiln_sp_encode(processor, "x", 1, &ids, 4, &count) == KILN_SP_INVALID_ARGUMENT)
        #expect(String(cString: kiln_sp_last_error(processor)).contains("no model"))
        #expect(kiln_sp_load_file(processor, "/nonexistent/kiln.model") != KILN_SP_OK)
        #expect(!String(cString: kiln_sp_last_error(processor)).isEmpty)
        let garbage: [UInt8] = Array("this is not a protobuf model at all".utf8)
        #expect(kiln_sp_load_bytes(processor, garbage, garbage.count) != KILN_SP_OK)
        var error = [CChar](repeating: 0, count: 256)
        #expect(kiln_sp_train("--input=/nonexistent/corpus.txt --model_prefix=/tmp/x --vocab_size=10", &error, 256) != KILN_SP_OK)
        #expect(!Self.text(error).isEmpty)
    }
}

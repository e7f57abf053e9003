import KilnTokenizers
import Testing

/// Streaming emits text only at character boundaries, whatever way the bytes are split.
@Suite struct StreamingDetokenizerTests {
    /// A vocabulary of single bytes (byte-level BPE with no merges): every id is one byte.
    static let bytes: ByteLevelBPETokenizer = {
        let tokens = (0...255).map { byte -> String in
            var s = String.UnicodeScalarView()
            s.append(ByteLevelTable.scalar(UInt8(byte)))
            return String(s)
        }
        return try! ByteLevelBPETokenizer(tokens: tokens, merges: [], preTokenizer: .gpt2)
    }()

    @Test func holdsBackSplitCharacters() throws {
        let text = "a€🙂é"
        let ids = Self.bytes.encode(text, addSpecial: false, parseSpecial: false)
        #expect(ids.count == text.utf8.count)
        var stream = StreamingDetokenizer(tokenizer: Self.bytes)
        var pieces: [String] = []
        for id in ids { pieces.append(try stream.append(id)) }
        pieces.append(stream.finish())
        // a | (€: 3 bytes) | (🙂: 4 bytes) | (é: 2 bytes): text appears only on each last byte.
        #expect(pieces == ["a", "", "", "€", "", "", "", "🙂", "", "é", ""])
        #expect(pieces.joined() == text)
    }

    @Test func unfinishedCharacterAtTheEndIsReplaced() throws {
        var stream = StreamingDetokenizer(tokenizer: Self.bytes)
        let euro = Array("€".utf8)
        #expect(try stream.append(Int(euro[0])) == "")
        #expect(try stream.append(Int(euro[1])) == "")
        #expect(stream.finish() == "\u{FFFD}")
    }
}

/// GPT-2's byte → character table, restated for the test.
enum ByteLevelTable {
    static func scalar(_ byte: UInt8) -> Unicode.Scalar {
        var next: UInt32 = 256
        for b in 0...255 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if b == Int(byte) { return printable ? Unicode.Scalar(UInt32(b))! : Unicode.Scalar(next)! }
            if !printable { next += 1 }
        }
        return " "
    }
}

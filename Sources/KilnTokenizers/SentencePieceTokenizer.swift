import CKilnSentencePiece
import Foundation

/// A SentencePiece `.model` run by the SentencePiece C++ library (through CKilnSentencePiece).
/// The file's protobuf framing is checked in Swift first, so a corrupt or truncated file is a
/// clear error rather than undefined behaviour inside the library.
public final class SentencePieceTokenizer: Tokenizer, @unchecked Sendable {
    public let vocabularySize: Int
    public let specialTokens: SpecialTokens
    public let addsBOS: Bool
    public let addsEOS: Bool

    private let handle: OpaquePointer
    private let lock = NSLock()  // the C++ processor is not documented as thread-safe
    private let pieces: [String]
    private let kinds: [TokenKind]
    private let ids: [String: Int]
    private let splitter: SpecialTokenSplitter

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case malformedModel(path: String, reason: String)
        case library(String)

        public var description: String {
            switch self {
            case .malformedModel(let path, let reason): return "\(path) is not a SentencePiece model: \(reason)"
            case .library(let message): return "SentencePiece: \(message)"
            }
        }
    }

    public convenience init(path: String, addsBOS: Bool = true, addsEOS: Bool = false) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw Failure.malformedModel(path: path, reason: "cannot read the file (\(error.localizedDescription))")
        }
        try self.init(serialized: data, name: path, addsBOS: addsBOS, addsEOS: addsEOS)
    }

    public init(serialized data: Data, name: String = "model", addsBOS: Bool = true, addsEOS: Bool = false) throws {
        if let problem = Self.framingProblem(in: [UInt8](data)) { throw Failure.malformedModel(path: name, reason: problem) }
        guard let handle = kiln_sp_create() else { throw Failure.library("out of memory") }
        let status = data.withUnsafeBytes { kiln_sp_load_bytes(handle, $0.baseAddress, $0.count) }
        guard status == KILN_SP_OK else {
            let message = String(cString: kiln_sp_last_error(handle))
            kiln_sp_destroy(handle)
            throw Failure.malformedModel(path: name, reason: message)
        }
        self.handle = handle
        let count = Int(kiln_sp_piece_count(handle))
        vocabularySize = count
        pieces = (0..<count).map { String(cString: kiln_sp_id_to_piece(handle, Int32($0))) }
        kinds = (0..<count).map { id in
            switch kiln_sp_piece_kind(handle, Int32(id)) {
            case KILN_SP_PIECE_UNKNOWN: return .unknown
            case KILN_SP_PIECE_CONTROL: return .control
            case KILN_SP_PIECE_BYTE: return .byte
            case KILN_SP_PIECE_UNUSED: return .unused
            default: return .normal
            }
        }
        ids = indexTokens(pieces)
        splitter = SpecialTokenSplitter(tokens: pieces, kinds: kinds)
        func optional(_ v: Int32) -> Int? { v >= 0 ? Int(v) : nil }
        let eos = optional(kiln_sp_eos_id(handle))
        specialTokens = SpecialTokens(bos: optional(kiln_sp_bos_id(handle)), eos: eos, pad: optional(kiln_sp_pad_id(handle)),
                                      unknown: optional(kiln_sp_unk_id(handle)), endOfGeneration: Set(eos.map { [$0] } ?? []))
        self.addsBOS = addsBOS
        self.addsEOS = addsEOS
    }

    deinit { kiln_sp_destroy(handle) }

    public func piece(for id: Int) -> String? { pieces.indices.contains(id) ? pieces[id] : nil }
    public func id(for piece: String) -> Int? { ids[piece] }

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        var out: [Int] = []
        if addSpecial && addsBOS, let bos = specialTokens.bos { out.append(bos) }
        splitter.encode(text, parseSpecial: parseSpecial, into: &out) { t, out in out += encodePlain(String(t)) }
        if addSpecial && addsEOS, let eos = specialTokens.eos { out.append(eos) }
        return out
    }

    private func encodePlain(_ text: String) -> [Int] {
        lock.lock()
        defer { lock.unlock() }
        var utf8 = Array(text.utf8)
        var capacity = max(16, utf8.count + 8)
        while true {
            var result = [Int32](repeating: 0, count: capacity)
            var count = 0
            let status = utf8.withUnsafeMutableBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) {
                    kiln_sp_encode(handle, $0.baseAddress, $0.count, &result, capacity, &count)
                }
            }
            if status == KILN_SP_BUFFER_TOO_SMALL {
                capacity = count
                continue
            }
            utf8.removeAll()
            // Encoding valid UTF-8 with a loaded model does not fail; an empty result is the safe answer.
            return status == KILN_SP_OK ? result.prefix(count).map(Int.init) : []
        }
    }

    public func bytes(for id: Int, skipSpecial: Bool) throws -> [UInt8] {
        guard pieces.indices.contains(id) else { throw TokenizerError.idOutOfRange(id, vocabularySize: vocabularySize) }
        switch kinds[id] {
        case .control: return skipSpecial ? [] : Array(pieces[id].utf8)
        case .byte:
            if pieces[id].hasPrefix("<0x"), let byte = UInt8(pieces[id].dropFirst(3).dropLast(), radix: 16) { return [byte] }
            return []
        default: return Array(pieces[id].replacingSpaceMarks().utf8)
        }
    }

    /// Decoded by the library itself (it knows the model's whitespace rules); control tokens are
    /// dropped or written out as their text.
    public func decode(_ ids: [Int], skipSpecial: Bool) throws -> String {
        var text = ""
        var run: [Int32] = []
        func flush() throws {
            guard !run.isEmpty else { return }
            text += try decodeRun(run)
            run.removeAll()
        }
        for id in ids {
            guard pieces.indices.contains(id) else { throw TokenizerError.idOutOfRange(id, vocabularySize: vocabularySize) }
            if kinds[id] == .control {
                try flush()
                if !skipSpecial { text += pieces[id] }
            } else {
                run.append(Int32(id))
            }
        }
        try flush()
        return text
    }

    private func decodeRun(_ run: [Int32]) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        var capacity = max(64, run.count * 8)
        while true {
            var buffer = [CChar](repeating: 0, count: capacity)
            var length = 0
            let status = kiln_sp_decode(handle, run, run.count, &buffer, capacity, &length)
            if status == KILN_SP_BUFFER_TOO_SMALL {
                capacity = length
                continue
            }
            guard status == KILN_SP_OK else { throw Failure.library(String(cString: kiln_sp_last_error(handle))) }
            return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Why `bytes` cannot be a serialized ModelProto, or nil: every top-level field must have a
    /// known wire type and a length inside the buffer, and there must be at least one piece.
    static func framingProblem(in bytes: [UInt8]) -> String? {
        guard !bytes.isEmpty else { return "the file is empty" }
        var offset = 0
        var pieceCount = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while offset < bytes.count && shift < 64 {
                let byte = bytes[offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while offset < bytes.count {
            let at = offset
            guard let key = varint() else { return "truncated field key at byte \(at)" }
            let field = key >> 3, wire = key & 7
            guard field >= 1 else { return "field number 0 at byte \(at)" }
            switch wire {
            case 0: guard varint() != nil else { return "truncated varint at byte \(at)" }
            case 1: offset += 8
            case 5: offset += 4
            case 2:
                guard let length = varint(), length <= UInt64(bytes.count - offset) else {
                    return "field \(field) at byte \(at) claims more bytes than the file holds"
                }
                offset += Int(length)
                if field == 1 { pieceCount += 1 }
            default: return "unknown wire type \(wire) at byte \(at)"
            }
            guard offset <= bytes.count else { return "field \(field) at byte \(at) runs past the end" }
        }
        return pieceCount == 0 ? "it holds no pieces" : nil
    }

    // MARK: training

    public enum ModelType: String, Sendable, CaseIterable {
        case bpe, unigram
    }

    /// Trains a model on text files and writes `output` (and the `.vocab` beside it) atomically:
    /// the library writes under a temporary prefix, then both files are renamed into place.
    public static func train(
        inputs: [String], vocabularySize: Int, modelType: ModelType, output: String, verbose: Bool = false,
        characterCoverage: Double = 1.0
    ) throws {
        guard !inputs.isEmpty else { throw Failure.library("no input files") }
        guard vocabularySize > 0 else { throw Failure.library("vocabulary size must be positive") }
        for input in inputs where !FileManager.default.isReadableFile(atPath: input) {
            throw Failure.library("cannot read input \(input)")
        }
        guard output.hasSuffix(".model") else { throw Failure.library("output \(output) must end in .model") }
        let prefix = String(output.dropLast(".model".count))
        let temporary = prefix + ".partial-\(getpid())"
        kiln_sp_set_log_level(verbose ? 0 : 2)
        // Flags are one string: file names with spaces or commas cannot be passed safely.
        for path in inputs + [temporary] where path.contains(" ") || path.contains(",") {
            throw Failure.library("path \(path) contains a space or comma, which SentencePiece's flags cannot carry")
        }
        let arguments = [
            "--input=\(inputs.joined(separator: ","))", "--model_prefix=\(temporary)", "--vocab_size=\(vocabularySize)",
            "--model_type=\(modelType.rawValue)", "--character_coverage=\(characterCoverage)", "--byte_fallback=true",
            "--hard_vocab_limit=false",
        ].joined(separator: " ")
        var error = [CChar](repeating: 0, count: 1024)
        let status = kiln_sp_train(arguments, &error, error.count)
        guard status == KILN_SP_OK else {
            try? FileManager.default.removeItem(atPath: temporary + ".model")
            try? FileManager.default.removeItem(atPath: temporary + ".vocab")
            throw Failure.library(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        for suffix in [".vocab", ".model"] {  // the .model last: its presence means both are complete
            guard rename(temporary + suffix, prefix + suffix) == 0 else {
                throw Failure.library("cannot move the trained \(suffix) into place: \(String(cString: strerror(errno)))")
            }
        }
    }
}

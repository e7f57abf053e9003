/// What text generation needs of a model: run tokens into its context and read the logits of the
/// last one. `TokenGenerator` and the front ends talk to this, not to a particular decoder.
public protocol LanguageModel: AnyObject {
    /// Positions the context holds.
    var contextSize: Int { get }
    var vocabularySize: Int { get }
    /// Logits of the last token of the last `forward` call: [vocabularySize].
    var logits: UnsafeMutableBufferPointer<Float> { get }
    /// Runs `tokens` at positions start..<start+count (earlier positions must already be in the
    /// context) and leaves the last token's logits in `logits`.
    func forward(_ tokens: [Int], startPosition: Int) throws
}

/// Why a model could not run the tokens it was given.
public enum LanguageModelFailure: Error, CustomStringConvertible, Equatable {
    case contextFull(needed: Int, available: Int)
    case tokenOutOfRange(Int)

    public var description: String {
        switch self {
        case .contextFull(let needed, let available): return "the context is full: \(needed) positions needed, \(available) available"
        case .tokenOutOfRange(let id): return "token id \(id) is outside the vocabulary"
        }
    }
}

import Testing
import KilnFormats
import KilnTokenizers
import KilnTransformer

// The fixtures name the tokenizer family; these narrow GGUFTokenizer's result to it.

func byteLevelTokenizer(from file: GGUFFile) throws -> ByteLevelBPETokenizer {
    try #require(try GGUFTokenizer.load(from: file) as? ByteLevelBPETokenizer)
}

func scoredTokenizer(from file: GGUFFile) throws -> ScoredBPETokenizer {
    try #require(try GGUFTokenizer.load(from: file) as? ScoredBPETokenizer)
}

func wordPieceTokenizer(from file: GGUFFile) throws -> WordPieceTokenizer {
    try #require(try GGUFTokenizer.load(from: file) as? WordPieceTokenizer)
}

/// Splits a document into overlapping passages that fit a model: words are added while their
/// token count (supplied by the caller's tokenizer) stays within `maxTokens`, and each next
/// passage starts `overlapTokens` tokens back. Ranges are UTF-8 byte offsets into the text.
public enum PassageSplitter {
    public static func split(
        _ text: String, maxTokens: Int, overlapTokens: Int, countTokens: (Substring) -> Int
    ) -> [(start: Int, end: Int, text: String)] {
        precondition(maxTokens > 0 && overlapTokens >= 0 && overlapTokens < maxTokens, "PassageSplitter: bad sizes")
        // Words with their byte ranges and token counts.
        var words: [(range: Range<String.Index>, tokens: Int)] = []
        var i = text.startIndex
        while i < text.endIndex {
            while i < text.endIndex, text[i].isWhitespace { i = text.index(after: i) }
            guard i < text.endIndex else { break }
            var j = i
            while j < text.endIndex, !text[j].isWhitespace { j = text.index(after: j) }
            words.append((i..<j, max(1, countTokens(text[i..<j]))))
            i = j
        }
        var passages: [(start: Int, end: Int, text: String)] = []
        var first = 0
        while first < words.count {
            var last = first, tokens = 0
            while last < words.count, tokens + words[last].tokens <= maxTokens || last == first {
                tokens += words[last].tokens
                last += 1
            }
            let range = words[first].range.lowerBound..<words[last - 1].range.upperBound
            passages.append((text.utf8.distance(from: text.startIndex, to: range.lowerBound),
                             text.utf8.distance(from: text.startIndex, to: range.upperBound), String(text[range])))
            if last == words.count { break }
            // Step back over about `overlapTokens` tokens, always moving forward by at least one word.
            var back = last, overlap = 0
            while back - 1 > first, overlap + words[back - 1].tokens <= overlapTokens {
                back -= 1
                overlap += words[back].tokens
            }
            first = max(back, first + 1)
        }
        return passages
    }
}

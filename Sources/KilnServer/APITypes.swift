import Foundation

// The OpenAI-compatible request and response bodies. Requests decode strictly: a field of the
// wrong type is a 400 naming it (decodeBody); fields the server does not know are ignored, as
// OpenAI's own server does.

/// A string or a list of strings (`stop`, `input`, `prompt`).
enum StringList: Decodable, Sendable {
    case one(String)
    case many([String])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .one(text)
        } else {
            self = .many(try container.decode([String].self))
        }
    }

    var values: [String] {
        switch self {
        case .one(let text): return [text]
        case .many(let texts): return texts
        }
    }
}

/// `logprobs`: a flag (chat) or a number of alternatives (text completions).
enum LogprobsField: Decodable, Sendable {
    case flag(Bool)
    case count(Int)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self) { self = .flag(flag) } else { self = .count(try container.decode(Int.self)) }
    }
}

/// A message's content: a string, or a list of parts of which the text ones are joined.
struct MessageContent: Decodable, Sendable {
    let text: String

    struct Part: Decodable { let type: String; let text: String? }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            text = ""
        } else if let string = try? container.decode(String.self) {
            text = string
        } else {
            let parts = try container.decode([Part].self)
            guard parts.allSatisfy({ $0.type == "text" }) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "only text content parts are supported")
            }
            text = parts.compactMap(\.text).joined()
        }
    }
}

struct ChatMessage: Decodable, Sendable {
    let role: String
    let content: MessageContent?
}

struct StreamOptions: Decodable, Sendable {
    let include_usage: Bool?
}

/// The sampling fields chat and text completions share.
struct SamplingFields: Decodable, Sendable {
    let max_tokens: Int?
    let max_completion_tokens: Int?
    let temperature: Float?
    let top_p: Float?
    let top_k: Int?
    let min_p: Float?
    let seed: UInt64?
    let stop: StringList?
    let presence_penalty: Float?
    let frequency_penalty: Float?
    let repeat_penalty: Float?
    /// llama-server's: generate through end-of-generation tokens.
    let ignore_eos: Bool?
    let stream: Bool?
    let stream_options: StreamOptions?
    /// Chat's `true`/`false`, or the text completions' count of alternatives.
    let logprobs: LogprobsField?
    let top_logprobs: Int?
}

struct ChatCompletionRequest: Decodable, Sendable {
    let model: String?
    let messages: [ChatMessage]
    let sampling: SamplingFields

    enum CodingKeys: String, CodingKey { case model, messages }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = try container.decodeIfPresent(String.self, forKey: .model)
        messages = try container.decode([ChatMessage].self, forKey: .messages)
        sampling = try SamplingFields(from: decoder)
    }
}

struct CompletionRequest: Decodable, Sendable {
    let model: String?
    let prompt: StringList
    let sampling: SamplingFields

    enum CodingKeys: String, CodingKey { case model, prompt }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = try container.decodeIfPresent(String.self, forKey: .model)
        prompt = try container.decode(StringList.self, forKey: .prompt)
        sampling = try SamplingFields(from: decoder)
    }
}

struct Usage: Encodable, Sendable {
    let prompt_tokens: Int
    let completion_tokens: Int
    let total_tokens: Int
}

struct EmbeddingRequest: Decodable, Sendable {
    let model: String?
    let input: StringList
    let encoding_format: String?
}

struct TokenizeRequest: Decodable, Sendable {
    let model: String?
    let content: String
    let add_special: Bool?
    let parse_special: Bool?
    let with_pieces: Bool?
}

struct DetokenizeRequest: Decodable, Sendable {
    let model: String?
    let tokens: [Int]
}

struct ImageRequest: Decodable, Sendable {
    let model: String?
    let prompt: String?
    let n: Int?
    let size: String?
    let response_format: String?
    let seed: UInt64?
}

struct SearchRequest: Decodable, Sendable {
    let query: StringList
    let k: Int?
    let exact: Bool?
}

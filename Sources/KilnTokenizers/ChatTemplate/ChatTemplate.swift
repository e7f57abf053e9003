import Foundation

/// A chat template (Jinja, as Hugging Face transformers renders it): parsed once, rendered for
/// any conversation. Rendering is bounded in steps, output size and macro depth, so a hostile
/// template stops with an error instead of hanging or exhausting memory.
public struct ChatTemplate: Sendable {
    public struct Limits: Sendable {
        public var steps = 2_000_000
        public var outputBytes = 16 << 20
        public var depth = 64
        public init() {}
    }

    public struct Message: Sendable, Equatable, Codable {
        public var role: String
        public var content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    public let source: String
    let nodes: [JinjaNode]

    public init(_ source: String) throws {
        self.source = source
        nodes = try JinjaParser.parse(source)
    }

    /// Renders `messages` with the variables transformers passes (`tools` and `documents` are
    /// None); `extra` adds or overrides variables. `now` is the clock `strftime_now` reads.
    public func render(
        messages: [Message], addGenerationPrompt: Bool, bosToken: String = "", eosToken: String = "",
        extra: [(String, JinjaValue)] = [], now: Date = Date(), limits: Limits = Limits()
    ) throws -> String {
        var context = JinjaObject([
            ("messages", .array(messages.map { .object(JinjaObject([("role", .string($0.role)), ("content", .string($0.content))])) })),
            ("tools", .none), ("documents", .none), ("add_generation_prompt", .bool(addGenerationPrompt)),
            ("bos_token", .string(bosToken)), ("eos_token", .string(eosToken)),
        ])
        for (k, v) in extra { context[k] = v }
        let interpreter = JinjaInterpreter(context: context, now: now, limits: limits)
        return try interpreter.run(nodes)
    }
}

extension JinjaNode: @unchecked Sendable {}
extension JinjaExpression: @unchecked Sendable {}

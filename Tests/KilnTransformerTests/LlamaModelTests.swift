import Foundation
import KilnFormats
import KilnKernels
import KilnTestSupport
import KilnTransformer
import KilnTokenizers
import Testing

/// SmolLM2-135M-Instruct against llama.cpp on the same file: the last-position logits of three
/// prompts, and greedy continuations token for token.
@Suite struct LlamaModelTests {
    static let modelPath = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/SmolLM2-135M-Instruct.Q4_1.gguf").path

    static func model() throws -> DecoderSequence? {
        try LlamaCppRecording.model(at: modelPath, contextSize: 512, batchSize: 32)
    }

    /// Kiln follows llama.cpp's CPU arithmetic step for step, so the logits are the same floats.
    @Test(arguments: ["s-logits-01", "s-logits-02", "s-logits-03"]) func lastPositionLogitsMatchLlamaCpp(name: String) throws {
        guard let model = try Self.model() else { return }
        try LlamaCppRecording.expectLogits(of: model, directory: Fixtures.url("llm/logits"), name: name)
    }

    /// Every continuation equals llama.cpp's 48 greedy ids (a split only at a genuine near-tie).
    @Test func greedyContinuationsMatchLlamaCpp() throws {
        guard let model = try Self.model() else { return }
        try LlamaCppRecording.expectGreedy(of: model, fixture: Fixtures.url("llm/greedy.json"))
    }

    struct ChatCase: Decodable {
        let id: String
        let messages: [ChatTemplate.Message]
        let rendered_prompt: String
        let prompt_ids: [Int]
        let generated_ids: [Int]
        let reply_text: String
        let step_margins: [Double]
    }

    struct ChatFixture: Decodable { let cases: [ChatCase] }

    /// The GGUF's own chat template renders each conversation byte for byte as jinja2 did, the
    /// rendering tokenizes to llama.cpp's ids, and the greedy reply (up to 64 tokens, ending at the
    /// first end-of-generation token) is llama.cpp's.
    @Test func chatRepliesMatchLlamaCpp() throws {
        guard let model = try Self.model() else { return }
        let tokenizer = try GGUFTokenizer.load(from: model.file)
        guard case .string(let source)? = model.file["tokenizer.chat_template"] else {
            Issue.record("the model has no chat template")
            return
        }
        let template = try ChatTemplate(source)
        let fixture = try JSONDecoder().decode(ChatFixture.self, from: Data(contentsOf: Fixtures.url("llm/chat.json")))
        for c in fixture.cases {
            let rendered = try template.render(messages: c.messages, addGenerationPrompt: true)
            #expect(rendered == c.rendered_prompt, "\(c.id): rendered prompt differs")
            let ids = tokenizer.encode(rendered, addSpecial: false, parseSpecial: true)
            #expect(ids == c.prompt_ids, "\(c.id): prompt ids differ")
            let generated = try LlamaCppRecording.greedy(model, prompt: ids, steps: 64, stopAt: tokenizer.specialTokens.endOfGeneration)
            if let split = generated.indices.first(where: { $0 >= c.generated_ids.count || generated[$0] != c.generated_ids[$0] }) {
                let margin = split < c.step_margins.count ? c.step_margins[split] : .infinity
                #expect(margin < 0.1, "\(c.id): differs at step \(split) where llama.cpp's margin is \(margin)")
            } else {
                #expect(generated.count == c.generated_ids.count, "\(c.id): \(generated.count) tokens, llama.cpp \(c.generated_ids.count)")
                let reply = try tokenizer.decode(generated, skipSpecial: true)
                #expect(reply == c.reply_text, "\(c.id): reply text differs")
            }
        }
    }
}

/// The generator on the real model: greedy output equals the model's own argmax loop, and a
/// stop string ends the text before it and is never streamed.
@Suite struct TokenGeneratorTests {
    @Test func greedyAndStopStrings() throws {
        guard let model = try LlamaModelTests.model() else { return }
        let tokenizer = try GGUFTokenizer.load(from: model.file)
        let generator = TokenGenerator(model: model, tokenizer: tokenizer)
        let prompt = tokenizer.encode("The capital of France is", addSpecial: true, parseSpecial: true)
        var streamed = ""
        let result = try generator.generate(prompt: prompt, maxTokens: 12, sampling: .greedy, ignoreEndOfGeneration: true) { streamed += $0 }
        #expect(result.tokens.count == 12 && result.stopReason == .length)
        #expect(streamed == result.text)
        #expect(try tokenizer.decode(result.tokens, skipSpecial: true) == result.text)
        // Replaying the argmax by hand gives the same tokens.
        try model.forward(prompt, startPosition: 0)
        var manual: [Int] = []
        for i in 0..<12 {
            let next = VectorOps.argmax(UnsafeBufferPointer(model.logits), count: model.logits.count)
            manual.append(next)
            try model.forward([next], startPosition: prompt.count + i)
        }
        #expect(manual == result.tokens)
        // Stop at the first "." of the same continuation.
        var stopped = ""
        let cut = try generator.generate(prompt: prompt, maxTokens: 12, sampling: .greedy, stopStrings: ["."], ignoreEndOfGeneration: true) { stopped += $0 }
        #expect(cut.stopReason == .stop)
        #expect(!stopped.contains(".") && stopped == cut.text && result.text.hasPrefix(cut.text + "."))
    }
}

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KilnImageModels
import KilnServer
import KilnServices
import KilnTestSupport
import KilnTokenizers
import KilnTransformer
import Testing

/// `kiln serve`'s routes on a real socket: the server runs in-process on an ephemeral loopback
/// port and URLSession drives it. Completions are compared with the library's own greedy
/// generation of the same prompt, embeddings with the embedder's vectors.
@Suite(.serialized) struct ServerTests {
    static var checkpoints: URL { Fixtures.repositoryRoot.appendingPathComponent("Checkpoints") }
    static let textModel = "SmolLM2-135M-Instruct.Q4_1"

    struct Reply {
        let status: Int
        let body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        var object: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var error: [String: Any]? { object["error"] as? [String: Any] }
    }

    /// A server started once for the suite (with `key`, when given), waited on until /health is 200.
    final class Running: @unchecked Sendable {
        let port: Int
        let task: Task<Void, any Error>
        init(port: Int, task: Task<Void, any Error>) { (self.port, self.task) = (port, task) }

        static func start(key: String? = nil) async throws -> Running? {
            let model = checkpoints.appendingPathComponent("\(textModel).gguf").path
            guard FileManager.default.fileExists(atPath: model) else {
                if Fixtures.isCI { Issue.record("missing \(model)") }
                return nil
            }
            var options = ServerOptions(model: model, embeddingModel: checkpoints.appendingPathComponent("all-MiniLM-L6-v2").path)
            options.port = 0
            options.apiKey = key
            options.maximumBodyBytes = 1 << 20
            options.metrics = true
            options.parallel = 8
            let (ports, continuation) = AsyncStream<Int>.makeStream()
            let task = Task { try await KilnServer.run(options) { continuation.yield($0) } }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { return nil }
            let server = Running(port: port, task: task)
            for _ in 0..<600 {
                if try await server.get("/health").status == 200 { return server }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            Issue.record("the server did not load within 60 s")
            return nil
        }

        func request(_ method: String, _ path: String, body: Data? = nil, key: String? = nil) async throws -> Reply {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            request.httpMethod = method
            request.httpBody = body
            request.timeoutInterval = 120
            if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
            if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
            let (data, response) = try await URLSession.shared.data(for: request)
            return Reply(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
        }

        func get(_ path: String, key: String? = nil) async throws -> Reply { try await request("GET", path, key: key) }

        func post(_ path: String, _ json: [String: Any], key: String? = nil) async throws -> Reply {
            try await request("POST", path, body: try JSONSerialization.data(withJSONObject: json), key: key)
        }

        /// A value of /metrics (`kiln_active_sequences`, …).
        func metric(_ name: String) async throws -> Int? {
            try await get("/metrics").text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Int($0.split(separator: " ")[1]) }
        }

        /// Whether no sequence is generating or waiting within ten seconds.
        func becomesIdle() async throws -> Bool {
            for _ in 0..<200 {
                if try await metric("kiln_active_sequences") == 0, try await metric("kiln_queue_depth") == 0 { return true }
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            return false
        }

        func stop() { task.cancel() }
    }

    /// The library's greedy completion of `messages` (or of a plain `prompt`), as `kiln generate` makes it.
    static func greedy(messages: [ChatTemplate.Message]? = nil, prompt: String? = nil, maxTokens: Int) throws -> TokenGenerator.Result {
        let model = try TextModel(path: checkpoints.appendingPathComponent("\(textModel).gguf"))
        let ids = try messages.map { try model.chatPrompt($0, template: try model.chatTemplate()) }
            ?? model.tokenizer.encode(prompt ?? "", addSpecial: true, parseSpecial: true)
        let generator = TokenGenerator(model: model.sequence(contextSize: 2048), tokenizer: model.tokenizer)
        return try generator.generate(prompt: ids, maxTokens: maxTokens, sampling: .greedy)
    }

    /// A short greedy chat reply from the server equals the library's.
    static func expectLoneReply(_ server: Running, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let expected = try greedy(messages: [.init(role: "user", content: "Name a planet.")], maxTokens: 12)
        let reply = try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": "Name a planet."]], "temperature": 0,
                                                                   "max_tokens": 12])
        #expect(((reply.object["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String == expected.text,
                sourceLocation: sourceLocation)
    }

    /// The error shape every failure has, with its status.
    static func expectError(_ reply: Reply, _ status: Int, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.status == status, "\(reply.status): \(reply.text)", sourceLocation: sourceLocation)
        let error = reply.error
        #expect(error?["message"] as? String != nil && error?["type"] as? String != nil, "\(reply.text)", sourceLocation: sourceLocation)
        #expect((error?["message"] as? String)?.contains(fragment) == true, "\(reply.text)", sourceLocation: sourceLocation)
    }

    @Test func routesAnswerAsOpenAIDoes() async throws {
        guard let server = try await Running.start() else { return }
        defer { server.stop() }

        let models = try await server.get("/v1/models")
        let ids = (models.object["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        #expect(ids == [Self.textModel, "all-MiniLM-L6-v2", "kiln-gan", "kiln-vae"], "\(models.text)")

        // Chat, whole and streamed, equals the library's greedy generation.
        let messages: [[String: Any]] = [["role": "system", "content": "You are brief."], ["role": "user", "content": "Name three colours."]]
        let expected = try Self.greedy(messages: messages.map { .init(role: $0["role"] as! String, content: $0["content"] as! String) }, maxTokens: 24)
        let chat = try await server.post("/v1/chat/completions", ["model": Self.textModel, "messages": messages, "temperature": 0, "max_tokens": 24])
        #expect(chat.status == 200, "\(chat.text)")
        let choice = (chat.object["choices"] as? [[String: Any]])?.first
        #expect((choice?["message"] as? [String: Any])?["content"] as? String == expected.text)
        #expect(choice?["finish_reason"] as? String == (expected.stopReason == .length ? "length" : "stop"))
        let usage = chat.object["usage"] as? [String: Any]
        #expect(usage?["prompt_tokens"] as? Int == expected.promptTokens.count && usage?["completion_tokens"] as? Int == expected.tokens.count)
        #expect(chat.object["object"] as? String == "chat.completion")

        let stream = try await server.post("/v1/chat/completions", ["messages": messages, "temperature": 0, "max_tokens": 24, "stream": true,
                                                                    "stream_options": ["include_usage": true]])
        #expect(stream.status == 200)
        let events = stream.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.last == "data: [DONE]", "\(stream.text)")
        var streamed = "", finish: String?, streamedUsage: [String: Any]?
        for event in events.dropLast() {
            guard event.hasPrefix("data: "),
                  let chunk = try? JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any] else {
                Issue.record("not an event: \(event)")
                continue
            }
            #expect(chunk["object"] as? String == "chat.completion.chunk")
            if let choice = (chunk["choices"] as? [[String: Any]])?.first {
                streamed += ((choice["delta"] as? [String: Any])?["content"] as? String) ?? ""
                if let reason = choice["finish_reason"] as? String { finish = reason }
            }
            if let u = chunk["usage"] as? [String: Any] { streamedUsage = u }
        }
        #expect(streamed == expected.text && finish != nil)
        #expect(streamedUsage?["completion_tokens"] as? Int == expected.tokens.count)

        // Log-probabilities: greedy picks the most likely token, and the first one's value is the
        // log-softmax of the model's own logits for the prompt.
        let withLogprobs = try await server.post("/v1/chat/completions", ["messages": messages, "temperature": 0, "max_tokens": 6,
                                                                          "logprobs": true, "top_logprobs": 3])
        let content = (((withLogprobs.object["choices"] as? [[String: Any]])?.first?["logprobs"] as? [String: Any])?["content"]
            as? [[String: Any]]) ?? []
        #expect(content.count == 6, "\(withLogprobs.text.prefix(400))")
        for item in content {
            let top = item["top_logprobs"] as? [[String: Any]] ?? []
            #expect(top.count == 3 && top.first?["token"] as? String == item["token"] as? String)
            #expect((item["logprob"] as? Double).map { $0 <= 0 } == true)
        }
        let model = try TextModel(path: Self.checkpoints.appendingPathComponent("\(Self.textModel).gguf"))
        let sequence = model.sequence(contextSize: 2048)
        let promptIds = try model.chatPrompt(messages.map { .init(role: $0["role"] as! String, content: $0["content"] as! String) },
                                             template: try model.chatTemplate())
        try sequence.forward(promptIds, startPosition: 0)
        let logits = Array(sequence.logits).map(Double.init)
        let best = logits.indices.max { logits[$0] < logits[$1] }!
        let normalizer = logits.max()! + log(logits.reduce(0) { $0 + exp($1 - logits.max()!) })
        let first = content.first?["logprob"] as? Double
        #expect(first.map { abs($0 - (logits[best] - normalizer)) < 1e-5 } == true, "\(String(describing: first)) vs \(logits[best] - normalizer)")
        #expect(content.first?["bytes"] as? [Int] == (try model.tokenizer.bytes(for: best, skipSpecial: false)).map { Int($0) })

        // No tokens asked for: an empty reply at once.
        let none = try await server.post("/v1/completions", ["prompt": "The capital of France is", "max_tokens": 0])
        #expect(((none.object["choices"] as? [[String: Any]])?.first?["text"] as? String) == "", "\(none.text)")
        #expect((none.object["usage"] as? [String: Any])?["completion_tokens"] as? Int == 0)

        // Text completion of a plain prompt.
        let plain = try Self.greedy(prompt: "The capital of France is", maxTokens: 12)
        let completion = try await server.post("/v1/completions", ["prompt": "The capital of France is", "temperature": 0, "max_tokens": 12])
        #expect(((completion.object["choices"] as? [[String: Any]])?.first?["text"] as? String) == plain.text, "\(completion.text)")

        // Embeddings, as floats and as base64, equal the embedder's vectors.
        let embedder = try SentenceEmbedder(folder: Self.checkpoints.appendingPathComponent("all-MiniLM-L6-v2"))
        let texts = ["Pottery is fired in a kiln.", "Swift compiles to native code."]
        let vectors = try embedder.embed(texts)
        let floats = try await server.post("/v1/embeddings", ["input": texts, "model": "all-MiniLM-L6-v2"])
        let data = floats.object["data"] as? [[String: Any]] ?? []
        #expect(data.count == 2, "\(floats.text)")
        for (item, vector) in zip(data, vectors) {
            let got = (item["embedding"] as? [Double])?.map { Float($0) }
            #expect(got == vector)
        }
        let base64 = try await server.post("/v1/embeddings", ["input": texts[0], "encoding_format": "base64"])
        let encoded = ((base64.object["data"] as? [[String: Any]])?.first?["embedding"] as? String).flatMap { Data(base64Encoded: $0) }
        let decoded = encoded.map { bytes in bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
        #expect(decoded == (try embedder.embed([texts[0]]))[0])

        // Images: the PNGs the library writes for the same model, count and seed.
        for kind in ImageModelKind.allCases {
            let reply = try await server.post("/v1/images/generations", ["model": "kiln-\(kind.rawValue)", "prompt": "", "n": 2, "seed": 7,
                                                                         "response_format": "b64_json"])
            let images = (reply.object["data"] as? [[String: Any]])?.compactMap { ($0["b64_json"] as? String).flatMap { Data(base64Encoded: $0) } }
            let studio = try ImageStudio(kind: kind, directory: Self.checkpoints.appendingPathComponent(kind.rawValue).path)
            #expect(images == (try studio.pngs(count: 2, seed: 7)), "\(reply.text.prefix(300))")
            #expect(images?.first?.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        }

        // Tokens.
        let tokens = try await server.post("/tokenize", ["content": "Hello world"])
        #expect(tokens.object["tokens"] as? [Int] == [19556, 905], "\(tokens.text)")
        let text = try await server.post("/detokenize", ["tokens": [19556, 905]])
        #expect(text.object["content"] as? String == "Hello world")
    }

    /// Ten requests at once (eight streamed), more than the server's eight parallel sequences:
    /// each reply is the one the library's lone greedy generation gives, and /metrics counted them.
    @Test func concurrentRequestsGetTheirLoneReplies() async throws {
        guard let server = try await Running.start() else { return }
        defer { server.stop() }
        let questions = ["Name three colours.", "What is a kiln?", "Count to five.", "Say hello in French.", "Name a planet.", "Why is snow white?",
                         "What is clay?", "Name a river.", "Spell cat.", "What is two plus two?"]
        let expected = try questions.map { try Self.greedy(messages: [.init(role: "user", content: $0)], maxTokens: 20 + $0.count % 7).text }
        let replies = try await withThrowingTaskGroup(of: (Int, Reply).self) { group in
            for (i, question) in questions.enumerated() {
                group.addTask {
                    (i, try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": question]], "temperature": 0,
                                                                      "max_tokens": 20 + question.count % 7, "stream": i < 8]))
                }
            }
            var byIndex: [Int: Reply] = [:]
            for try await (i, reply) in group { byIndex[i] = reply }
            return byIndex
        }
        for (i, question) in questions.enumerated() {
            let reply = replies[i]!
            #expect(reply.status == 200, "\(reply.text)")
            let text: String
            if i < 8 {
                text = reply.text.components(separatedBy: "\n\n").compactMap { event -> String? in
                    guard event.hasPrefix("data: {"), let chunk = try? JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any],
                          let choice = (chunk["choices"] as? [[String: Any]])?.first else { return nil }
                    return (choice["delta"] as? [String: Any])?["content"] as? String
                }.joined()
            } else {
                text = ((reply.object["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String ?? ""
            }
            #expect(text == expected[i], "\(question): \(text) vs \(expected[i])")
        }
        let metrics = try await server.get("/metrics").text
        #expect(metrics.contains("kiln_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 10"), "\(metrics)")
        #expect(metrics.contains("kiln_time_to_first_token_seconds_count 10"), "\(metrics)")
    }

    /// A chat's next turn reuses the cache its first turn left and still gets the lone reply.
    @Test func nextTurnsReuseTheirPromptAndKeepTheirReply() async throws {
        guard let server = try await Running.start() else { return }
        defer { server.stop() }
        var conversation: [[String: String]] = [["role": "system", "content": "You are brief."], ["role": "user", "content": "Name a colour."]]
        for question in ["And another?", "Which is warmer?"] {
            let reply = try await server.post("/v1/chat/completions", ["messages": conversation, "temperature": 0, "max_tokens": 16])
            let text = ((reply.object["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String ?? ""
            let expected = try Self.greedy(messages: conversation.map { .init(role: $0["role"]!, content: $0["content"]!) }, maxTokens: 16)
            #expect(text == expected.text, "\(text) vs \(expected.text)")
            conversation += [["role": "assistant", "content": text], ["role": "user", "content": question]]
        }
        let reused = try await server.metric("kiln_prompt_tokens_reused_total")
        #expect((reused ?? 0) > 20, "\(String(describing: reused)) prompt tokens reused")
    }

    /// Clients that leave in the middle of long streamed replies free their sequences: the
    /// server stops generating for them, and answers the next request as it would alone.
    @Test func clientsThatLeaveFreeTheirSequences() async throws {
        guard let server = try await Running.start() else { return }
        defer { server.stop() }
        let leaving = (0..<6).map { i in
            Task {
                try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": "Tell story number \(i)."]],
                                                               "max_tokens": 1500, "temperature": 0, "stream": true, "ignore_eos": true])
            }
        }
        try await Task.sleep(nanoseconds: 1_500_000_000)
        for task in leaving { task.cancel() }
        for task in leaving { _ = await task.result }
        #expect(try await server.becomesIdle(), "sequences still generating for clients that left")
        try await Self.expectLoneReply(server)
    }

    /// A bounded soak: sixteen clients for fifteen seconds mixing streams they abandon at random
    /// moments, short requests and malformed bodies. Every answer is a completion or an error in
    /// the API's shape, no sequence is left running, and the server still answers correctly.
    @Test func soakWithCancellationsAndMalformedBodies() async throws {
        guard let server = try await Running.start() else { return }
        defer { server.stop() }
        let malformed: [(String, Data)] = [
            ("/v1/chat/completions", Data("{".utf8)), ("/v1/chat/completions", Data("[]".utf8)),
            ("/v1/chat/completions", Data(#"{"messages": 5}"#.utf8)),
            ("/v1/chat/completions", Data(#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e300}"#.utf8)),
            ("/v1/chat/completions", Data(#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}"#.utf8)),
            ("/v1/chat/completions", Data(#"{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}"#.utf8)),
            ("/v1/chat/completions", Data(#"{"messages": [{"role": "user", "content": "hi"}], "seed": -3}"#.utf8)),
            ("/v1/completions", Data([0x7B, 0x22, 0x70, 0xC3, 0x28, 0x22, 0x7D])),
            ("/v1/completions", Data((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8)),
            ("/v1/embeddings", Data(#"{"input": [1, 2, 3]}"#.utf8)),
            ("/v1/images/generations", Data(#"{"prompt": "", "n": 100000000000000000000}"#.utf8)),
            ("/tokenize", Data(#"{"content": null}"#.utf8)),
            ("/detokenize", Data(#"{"tokens": [-1]}"#.utf8)),
            ("/v1/embeddings", Data(count: 1 << 21)),
        ]
        let deadline = Date().addingTimeInterval(15)
        let outcomes = try await withThrowingTaskGroup(of: [String].self) { group in
            for client in 0..<16 {
                group.addTask {
                    var problems: [String] = []
                    var round = 0
                    while Date() < deadline {
                        round += 1
                        switch (client + round) % 3 {
                        case 0:  // a long stream abandoned after a random moment
                            let task = Task {
                                try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": "hi"]], "max_tokens": 400,
                                                               "stream": true, "ignore_eos": true])
                            }
                            try await Task.sleep(nanoseconds: UInt64.random(in: 10_000_000...400_000_000))
                            task.cancel()
                            _ = await task.result
                        case 1:
                            let reply = try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": "hi"]], "max_tokens": 4,
                                                                                       "temperature": 0])
                            if reply.status != 200 && reply.status != 429 { problems.append("short request: \(reply.status) \(reply.text.prefix(200))") }
                        default:
                            let (path, body) = malformed[(client * 7 + round) % malformed.count]
                            let reply = try await server.request("POST", path, body: body)
                            if !(400..<500).contains(reply.status) || reply.error?["message"] as? String == nil {
                                problems.append("\(path) \(body.prefix(40).count)B: \(reply.status) \(reply.text.prefix(200))")
                            }
                        }
                    }
                    return problems
                }
            }
            var all: [String] = []
            for try await problems in group { all += problems }
            return all
        }
        #expect(outcomes.isEmpty, "\(outcomes.prefix(5))")
        #expect(try await server.becomesIdle(), "sequences left running after the soak")
        try await Self.expectLoneReply(server)
    }

    @Test func badRequestsGetErrorsInOpenAIsShape() async throws {
        guard let server = try await Running.start() else { return }
        defer { server.stop() }
        Self.expectError(try await server.request("POST", "/v1/chat/completions", body: Data("{not json".utf8)), 400, "not valid JSON")
        Self.expectError(try await server.request("POST", "/v1/chat/completions", body: Data([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D])), 400, "not valid UTF-8")
        Self.expectError(try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": "hi"]], "max_tokens": "many"]),
                         400, "max_tokens")
        Self.expectError(try await server.post("/v1/chat/completions", ["temperature": 0]), 400, "missing field messages")
        Self.expectError(try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": "hi"]], "model": "gpt-4"]),
                         404, "gpt-4")
        Self.expectError(try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": "hi"]], "max_tokens": 5000]),
                         400, "exceed the context of 2048")
        let long = String(repeating: "kiln ", count: 3000)
        Self.expectError(try await server.post("/v1/completions", ["prompt": long]), 400, "the context holds 2048")
        Self.expectError(try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": "hi"]], "temperature": 1e9]),
                         400, "temperature")
        Self.expectError(try await server.post("/v1/embeddings", ["input": [String]()]), 400, "input")
        Self.expectError(try await server.post("/detokenize", ["tokens": [1 << 40]]), 400, "not a token id")
        Self.expectError(try await server.post("/v1/search", ["query": "kiln"]), 404, "no index")
        Self.expectError(try await server.get("/v1/nothing"), 404, "no such route")
        Self.expectError(try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": "hi"]], "logprobs": true,
                                                                        "top_logprobs": 50]), 400, "top_logprobs")
        Self.expectError(try await server.post("/v1/images/generations", ["prompt": "", "size": "1024x1024"]), 400, "size must be 28x28")
        Self.expectError(try await server.post("/v1/images/generations", ["prompt": "", "n": 0]), 400, "n must be")
        Self.expectError(try await server.post("/v1/images/generations", ["prompt": "", "model": "dall-e-3"]), 404, "kiln-gan, kiln-vae")
        Self.expectError(try await server.request("POST", "/v1/embeddings", body: Data(count: 2 << 20)), 413, "larger")
        // Still alive and correct after all of that.
        #expect(try await server.post("/tokenize", ["content": "Hello world"]).object["tokens"] as? [Int] == [19556, 905])
    }

    @Test func theKeyGuardsEveryRouteButHealth() async throws {
        guard let server = try await Running.start(key: "s3cret") else { return }
        defer { server.stop() }
        #expect(try await server.get("/health").status == 200)
        Self.expectError(try await server.get("/v1/models"), 401, "missing API key")
        Self.expectError(try await server.get("/v1/models", key: "wrong"), 401, "invalid API key")
        Self.expectError(try await server.post("/tokenize", ["content": "x"], key: "s3cre"), 401, "invalid API key")
        #expect(try await server.get("/v1/models", key: "s3cret").status == 200)
    }

    @Test func aPublicAddressNeedsAKey() throws {
        var options = ServerOptions(model: "m.gguf")
        options.host = "0.0.0.0"
        #expect(throws: ServerOptions.Invalid.self) { try options.validate() }
        options.apiKey = "k"
        try options.validate()
        options.apiKey = nil
        options.insecure = true
        try options.validate()
    }
}

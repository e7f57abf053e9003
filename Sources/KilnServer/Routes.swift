import Foundation
import Hummingbird
import KilnSearch
import KilnServices
import KilnTokenizers
import KilnTransformer
import NIOCore

/// The routes: thin handlers that decode a request, call the library, and encode the answer.
struct Routes: Sendable {
    let state: ServerState

    func register(on router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in
            guard state.models != nil else {
                return json(["status": "loading"], status: .serviceUnavailable)
            }
            return json(["status": "ok"])
        }
        router.get("/v1/models") { _, _ in try models() }
        if let metrics = state.metrics {
            router.get("/metrics") { _, _ in
                Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                         body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.render())))
            }
        }
        router.post("/v1/chat/completions") { request, context in try await chat(request, context) }
        router.post("/v1/completions") { request, context in try await completion(request, context) }
        router.post("/v1/embeddings") { request, context in try await embeddings(request, context) }
        router.post("/v1/search") { request, context in try await search(request, context) }
        router.post("/v1/images/generations") { request, context in try await images(request, context) }
        router.post("/tokenize") { request, context in try await tokenize(request, context) }
        router.post("/detokenize") { request, context in try await detokenize(request, context) }
    }

    var limit: Int { state.options.maximumBodyBytes }

    // MARK: Models

    func models() throws -> Response {
        let loaded = try state.ready()
        struct Model: Encodable { let id: String; let object = "model"; let created: Int; let owned_by = "kiln" }
        struct List: Encodable { let object = "list"; let data: [Model] }
        let created = Int(Date().timeIntervalSince1970)
        return json(List(data: loaded.modelIDs.map { Model(id: $0, created: created) }))
    }

    /// A request's `model` must name the model of its kind (or be absent).
    func check(_ requested: String?, serving name: String, kind: String) throws {
        guard let requested, requested != name else { return }
        throw APIError.notFound("the model \(requested) does not exist here; this server's \(kind) model is \(name)", code: "model_not_found")
    }

    // MARK: Generation

    struct Plan {
        var job: BatchScheduler.Job
        var stream: Bool
        var includeUsage: Bool
    }

    /// Validated sampling fields for a prompt of `promptCount` tokens.
    func plan(_ fields: SamplingFields, prompt: [Int], generation: BatchScheduler) throws -> Plan {
        guard !prompt.isEmpty else { throw APIError.invalid("the prompt has no tokens", param: "messages") }
        let context = generation.contextSize
        guard prompt.count < context else {
            throw APIError(.badRequest, "the prompt has \(prompt.count) tokens; the context holds \(context)",
                           param: "messages", code: "context_length_exceeded")
        }
        let room = context - prompt.count
        let requested = fields.max_completion_tokens ?? fields.max_tokens
        if let requested {
            guard requested >= 0 else { throw APIError.invalid("max_tokens must be non-negative", param: "max_tokens") }
            guard requested <= room else {
                throw APIError(.badRequest, "the prompt (\(prompt.count) tokens) plus max_tokens \(requested) exceed the context of \(context) tokens",
                               param: "max_tokens", code: "context_length_exceeded")
            }
        }
        var alternatives: Int?
        switch fields.logprobs {
        case .flag(true)?:
            alternatives = fields.top_logprobs ?? 0
        case .count(let n)?:
            alternatives = n
        case .flag(false)?, nil:
            if fields.top_logprobs != nil { throw APIError.invalid("top_logprobs needs logprobs: true", param: "top_logprobs") }
        }
        if let n = alternatives {
            guard (0...20).contains(n) else { throw APIError.invalid("top_logprobs must be in 0…20", param: "top_logprobs") }
            if fields.stream == true { throw APIError.invalid("logprobs are not supported with stream yet", param: "logprobs") }
        }
        var sampling = SamplingParameters()
        if let t = fields.temperature {
            guard t.isFinite, (0...100).contains(t) else { throw APIError.invalid("temperature must be in 0…100", param: "temperature") }
            sampling.temperature = t
        }
        if let p = fields.top_p {
            guard p.isFinite, (0...1).contains(p) else { throw APIError.invalid("top_p must be in 0…1", param: "top_p") }
            sampling.topP = p
        }
        if let k = fields.top_k {
            guard k >= 0 else { throw APIError.invalid("top_k must be non-negative", param: "top_k") }
            sampling.topK = k
        }
        if let m = fields.min_p {
            guard m.isFinite, (0...1).contains(m) else { throw APIError.invalid("min_p must be in 0…1", param: "min_p") }
            sampling.minP = m
        }
        for (name, value) in [("presence_penalty", fields.presence_penalty), ("frequency_penalty", fields.frequency_penalty)] {
            guard let value else { continue }
            guard value.isFinite, (-2...2).contains(value) else { throw APIError.invalid("\(name) must be in -2…2", param: name) }
        }
        sampling.presencePenalty = fields.presence_penalty ?? 0
        sampling.frequencyPenalty = fields.frequency_penalty ?? 0
        if let r = fields.repeat_penalty {
            guard r.isFinite, r > 0, r <= 10 else { throw APIError.invalid("repeat_penalty must be in (0, 10]", param: "repeat_penalty") }
            sampling.repetitionPenalty = r
        }
        let stop = fields.stop?.values ?? []
        guard stop.count <= 16, stop.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 1024 }) else {
            throw APIError.invalid("stop takes up to 16 non-empty strings of at most 1024 bytes", param: "stop")
        }
        let job = BatchScheduler.Job(prompt: prompt, maxTokens: requested ?? room, sampling: sampling,
                                     seed: fields.seed ?? UInt64.random(in: 0...UInt64.max), stop: stop,
                                     ignoreEndOfGeneration: fields.ignore_eos ?? false, logprobAlternatives: alternatives)
        return Plan(job: job, stream: fields.stream ?? false, includeUsage: fields.stream_options?.include_usage ?? false)
    }

    func finishReason(_ reason: TokenGenerator.StopReason) -> String {
        reason == .length ? "length" : "stop"
    }

    func chat(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try await decodeBody(ChatCompletionRequest.self, request, limit: limit)
        let loaded = try state.ready()
        try check(body.model, serving: loaded.text.name, kind: "language")
        guard !body.messages.isEmpty else { throw APIError.invalid("messages is empty", param: "messages") }
        guard let template = loaded.template else {
            throw APIError.invalid("\(loaded.text.name) has no chat template; use /v1/completions")
        }
        let messages = body.messages.map { ChatTemplate.Message(role: $0.role, content: $0.content?.text ?? "") }
        let prompt: [Int]
        do {
            prompt = try loaded.text.chatPrompt(messages, template: template)
        } catch {
            throw APIError.invalid("\(error)", param: "messages")
        }
        let plan = try plan(body.sampling, prompt: prompt, generation: loaded.generation)
        return try await respond(plan, loaded: loaded, object: "chat.completion", idPrefix: "chatcmpl")
    }

    func completion(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try await decodeBody(CompletionRequest.self, request, limit: limit)
        let loaded = try state.ready()
        try check(body.model, serving: loaded.text.name, kind: "language")
        let prompts = body.prompt.values
        guard prompts.count == 1 else { throw APIError.invalid("one prompt per request", param: "prompt") }
        let prompt = loaded.text.tokenizer.encode(prompts[0], addSpecial: true, parseSpecial: true)
        let plan = try plan(body.sampling, prompt: prompt, generation: loaded.generation)
        return try await respond(plan, loaded: loaded, object: "text_completion", idPrefix: "cmpl")
    }

    /// Runs the plan: one JSON body, or server-sent events ending in `data: [DONE]`.
    func respond(_ plan: Plan, loaded: ServerState.LoadedModels, object: String, idPrefix: String) async throws -> Response {
        let cancellation = Cancellation()
        let events = try loaded.generation.run(plan.job, cancellation: cancellation)
        let id = "\(idPrefix)-\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        let created = Int(Date().timeIntervalSince1970)
        let model = loaded.text.name
        let isChat = object == "chat.completion"
        let promptCount = plan.job.prompt.count
        @Sendable func usage(_ result: TokenGenerator.Result) -> Usage {
            Usage(prompt_tokens: promptCount, completion_tokens: result.tokens.count, total_tokens: promptCount + result.tokens.count)
        }
        guard plan.stream else {
            var text = ""
            var final: TokenGenerator.Result?, logprobs: [TokenLogprob] = []
            do {
                for try await event in events {
                    switch event {
                    case .text(let piece): text += piece
                    case .finished(let result, let reported): (final, logprobs) = (result, reported)
                    }
                }
            } catch {
                throw APIError(.internalServerError, "generation failed: \(error)")
            }
            guard let final else { throw APIError(.internalServerError, "generation ended without a result") }
            let wanted = plan.job.logprobAlternatives != nil
            let tokenizer = loaded.text.tokenizer
            let choice: [String: any Sendable] = isChat
                ? ["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": finishReason(final.stopReason),
                   "logprobs": wanted ? chatLogprobs(logprobs, tokenizer) : NSNull()]
                : ["index": 0, "text": text, "finish_reason": finishReason(final.stopReason),
                   "logprobs": wanted ? completionLogprobs(logprobs, tokenizer) : NSNull()]
            let u = usage(final)
            return json([
                "id": id, "object": object, "created": created, "model": model, "choices": [choice],
                "usage": ["prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens],
            ] as [String: any Sendable])
        }
        let chunkObject = isChat ? "chat.completion.chunk" : "text_completion"
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: ResponseBody { writer in
            func send(_ document: [String: any Sendable]) async throws {
                try await writer.write(ByteBuffer(bytes: Array("data: ".utf8) + jsonBytes(document) + Array("\n\n".utf8)))
            }
            func chunk(_ choices: [[String: any Sendable]]) -> [String: any Sendable] {
                ["id": id, "object": chunkObject, "created": created, "model": model, "choices": choices]
            }
            do {
                if isChat { try await send(chunk([["index": 0, "delta": ["role": "assistant", "content": ""], "finish_reason": NSNull()]])) }
                for try await event in events {
                    switch event {
                    case .text(let piece):
                        try await send(chunk([isChat ? ["index": 0, "delta": ["content": piece], "finish_reason": NSNull()]
                                                     : ["index": 0, "text": piece, "finish_reason": NSNull(), "logprobs": NSNull()]]))
                    case .finished(let result, _):
                        let reason = finishReason(result.stopReason)
                        try await send(chunk([isChat ? ["index": 0, "delta": [String: String](), "finish_reason": reason]
                                                     : ["index": 0, "text": "", "finish_reason": reason, "logprobs": NSNull()]]))
                        if plan.includeUsage {
                            let u = usage(result)
                            var last = chunk([])
                            last["usage"] = ["prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens]
                            try await send(last)
                        }
                    }
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                cancellation.cancel()
                throw error
            }
        })
    }

    /// Chat's `logprobs`: per token its text, bytes and log-probability, with the alternatives.
    func chatLogprobs(_ logprobs: [TokenLogprob], _ tokenizer: any Tokenizer) -> [String: any Sendable] {
        func entry(_ token: Int, _ logprob: Float) -> [String: any Sendable] {
            let bytes = (try? tokenizer.bytes(for: token, skipSpecial: false)) ?? []
            return ["token": String(decoding: bytes, as: UTF8.self), "logprob": Double(logprob), "bytes": bytes.map { Int($0) }]
        }
        let content: [[String: any Sendable]] = logprobs.map { item in
            var e = entry(item.token, item.logprob)
            e["top_logprobs"] = item.top.map { entry($0.token, $0.logprob) }
            return e
        }
        return ["content": content, "refusal": NSNull()]
    }

    /// Text completions' `logprobs`: parallel lists of tokens, log-probabilities, alternatives and offsets.
    func completionLogprobs(_ logprobs: [TokenLogprob], _ tokenizer: any Tokenizer) -> [String: any Sendable] {
        func text(_ token: Int) -> String { String(decoding: (try? tokenizer.bytes(for: token, skipSpecial: false)) ?? [], as: UTF8.self) }
        var offsets: [Int] = [], offset = 0
        for item in logprobs {
            offsets.append(offset)
            offset += text(item.token).utf16.count
        }
        let top: [[String: any Sendable]] = logprobs.map { item in
            Dictionary(item.top.map { (text($0.token), Double($0.logprob) as any Sendable) }, uniquingKeysWith: { first, _ in first })
        }
        return ["tokens": logprobs.map { text($0.token) }, "token_logprobs": logprobs.map { Double($0.logprob) },
                "top_logprobs": top, "text_offset": offsets]
    }

    // MARK: Embeddings and search

    /// Runs `work` on the embedding queue.
    func onEmbeddingQueue<T: Sendable>(_ loaded: ServerState.LoadedModels, _ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            loaded.embeddingQueue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    func embeddings(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try await decodeBody(EmbeddingRequest.self, request, limit: limit)
        let loaded = try state.ready()
        try check(body.model, serving: loaded.embedderName, kind: "embedding")
        let texts = body.input.values
        guard !texts.isEmpty, texts.count <= 2048 else { throw APIError.invalid("input takes 1 to 2048 texts", param: "input") }
        let format = body.encoding_format ?? "float"
        guard format == "float" || format == "base64" else {
            throw APIError.invalid("encoding_format must be float or base64", param: "encoding_format")
        }
        let embedder = loaded.embedder
        let (vectors, tokens) = try await onEmbeddingQueue(loaded) {
            (try embedder.embed(texts), texts.reduce(0) { $0 + embedder.tokens($1).count })
        }
        let data: [[String: any Sendable]] = vectors.enumerated().map { index, vector in
            let embedding: any Sendable = format == "base64"
                ? vector.withUnsafeBytes { Data($0) }.base64EncodedString()
                : vector.map { Double($0) }
            return ["object": "embedding", "index": index, "embedding": embedding]
        }
        return json(["object": "list", "data": data, "model": loaded.embedderName,
                     "usage": ["prompt_tokens": tokens, "total_tokens": tokens]] as [String: any Sendable])
    }

    func search(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try await decodeBody(SearchRequest.self, request, limit: limit)
        let loaded = try state.ready()
        guard let index = loaded.index else { throw APIError.notFound("this server has no index; start it with --index DIR") }
        let queries = body.query.values
        guard !queries.isEmpty, queries.count <= 256, queries.allSatisfy({ !$0.allSatisfy(\.isWhitespace) }) else {
            throw APIError.invalid("query takes 1 to 256 non-empty texts", param: "query")
        }
        let k = body.k ?? 10
        guard (1...1000).contains(k) else { throw APIError.invalid("k must be in 1…1000", param: "k") }
        let exact = body.exact ?? false
        nonisolated(unsafe) let documents = index  // used on the embedding queue only
        let results = try await onEmbeddingQueue(loaded) { try documents.search(queries, k: k, exact: exact) }
        let lists: [[[String: any Sendable]]] = results.map { hits in
            hits.enumerated().map { rank, hit in
                let p = hit.passage
                return ["rank": rank + 1, "score": Double(hit.score), "id": Int(p.id), "source": p.source, "start": p.start, "end": p.end,
                        "title": p.title ?? NSNull(), "document": p.document ?? NSNull(), "text": p.text]
            }
        }
        return json(["object": "list", "data": lists.count == 1 ? lists[0] : lists] as [String: any Sendable])
    }

    // MARK: Images

    static let maximumImages = 256

    func images(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try await decodeBody(ImageRequest.self, request, limit: limit)
        let loaded = try state.ready()
        let available = loaded.images.keys.sorted()
        guard let first = available.first else {
            throw APIError.notFound("this server has no image models; start it with --image-models DIR (train them with `kiln train vae|gan`)")
        }
        let id = body.model ?? first
        guard let studio = loaded.images[id] else {
            throw APIError.notFound("the model \(id) does not exist here; this server's image models are \(available.joined(separator: ", "))",
                                    code: "model_not_found")
        }
        let n = body.n ?? 1
        guard (1...Self.maximumImages).contains(n) else { throw APIError.invalid("n must be in 1…\(Self.maximumImages)", param: "n") }
        let side = ImageStudio.side
        if let size = body.size, size != "\(side)x\(side)" {
            throw APIError.invalid("size must be \(side)x\(side): \(id) draws \(side)×\(side) grayscale images", param: "size")
        }
        if let format = body.response_format, format != "b64_json" {
            throw APIError.invalid("response_format must be b64_json: this server keeps no image files to link to", param: "response_format")
        }
        let seed = body.seed ?? UInt64.random(in: 0...UInt64.max)
        nonisolated(unsafe) let sampler = studio  // used on the embedding queue only
        let pngs = try await onEmbeddingQueue(loaded) { try sampler.pngs(count: n, seed: seed) }
        let data: [[String: any Sendable]] = pngs.map { ["b64_json": $0.base64EncodedString()] }
        return json(["created": Int(Date().timeIntervalSince1970), "data": data] as [String: any Sendable])
    }

    // MARK: Tokens

    func tokenize(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try await decodeBody(TokenizeRequest.self, request, limit: limit)
        let loaded = try state.ready()
        try check(body.model, serving: loaded.text.name, kind: "language")
        let tokenizer = loaded.text.tokenizer
        let ids = tokenizer.encode(body.content, addSpecial: body.add_special ?? false, parseSpecial: body.parse_special ?? true)
        if body.with_pieces == true {
            let pieces: [[String: any Sendable]] = ids.map { ["id": $0, "piece": tokenizer.piece(for: $0) ?? ""] }
            return json(["tokens": pieces] as [String: any Sendable])
        }
        return json(["tokens": ids] as [String: any Sendable])
    }

    func detokenize(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try await decodeBody(DetokenizeRequest.self, request, limit: limit)
        let loaded = try state.ready()
        try check(body.model, serving: loaded.text.name, kind: "language")
        let vocabulary = loaded.text.vocabularySize
        if let bad = body.tokens.firstIndex(where: { !(0..<vocabulary).contains($0) }) {
            throw APIError.invalid("tokens[\(bad)] = \(body.tokens[bad]) is not a token id of this model (0..<\(vocabulary))", param: "tokens")
        }
        let text = try loaded.text.tokenizer.decode(body.tokens, skipSpecial: false)
        return json(["content": text])
    }
}

/// JSON bytes of a dictionary/array document (JSONSerialization: key order is not kept).
func jsonBytes(_ document: Any) -> [UInt8] {
    let data = (try? JSONSerialization.data(withJSONObject: document, options: [.withoutEscapingSlashes])) ?? Data("{}".utf8)
    return [UInt8](data)
}

func json(_ document: [String: any Sendable], status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: jsonBytes(document) + [0x0A])))
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? JSONEncoder.api.encode(value)) ?? Data("{}".utf8)
    return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: [UInt8](data) + [0x0A])))
}

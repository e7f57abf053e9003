import Foundation
import Hummingbird
import NIOCore

/// An error in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with its HTTP
/// status: every failure a client can see is one of these.
struct APIError: Error, Sendable {
    let status: HTTPResponse.Status
    let message: String
    let type: String
    let param: String?
    let code: String?

    init(_ status: HTTPResponse.Status, _ message: String, type: String? = nil, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type ?? (status.code >= 500 ? "server_error" : "invalid_request_error")
        self.param = param
        self.code = code
    }

    static func invalid(_ message: String, param: String? = nil) -> APIError { APIError(.badRequest, message, param: param) }
    static func notFound(_ message: String, code: String? = nil) -> APIError { APIError(.notFound, message, code: code) }

    struct Body: Encodable {
        /// Every field present, `null` when unset, as OpenAI's clients expect.
        struct Detail: Encodable {
            let message: String, type: String, param: String?, code: String?
            enum CodingKeys: CodingKey { case message, type, param, code }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(message, forKey: .message)
                try container.encode(type, forKey: .type)
                try container.encode(param, forKey: .param)
                try container.encode(code, forKey: .code)
            }
        }
        let error: Detail
    }

    var response: Response {
        let body = Body(error: .init(message: message, type: type, param: param, code: code))
        var data = (try? JSONEncoder.api.encode(body)) ?? Data(#"{"error":{"message":"internal error","type":"server_error"}}"#.utf8)
        data.append(0x0A)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Any error thrown while answering, as the client sees it.
    static func from(_ error: any Error) -> APIError {
        if let api = error as? APIError { return api }
        if let http = error as? HTTPError {
            switch http.status {
            case .contentTooLarge: return APIError(.contentTooLarge, "the request body is larger than the server accepts")
            case .notFound: return .notFound("no such route")
            case .methodNotAllowed: return APIError(.methodNotAllowed, "method not allowed on this route")
            default: return APIError(http.status, http.body ?? http.status.reasonPhrase)
            }
        }
        return APIError(.internalServerError, "\(error)")
    }
}

extension JSONEncoder {
    /// Compact JSON with slashes unescaped, as the API's responses are written.
    static var api: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }
}

/// Turns every thrown error (routing, body limits, handlers) into the OpenAI error shape.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return APIError.from(error).response
        }
    }
}

/// Counts every answer by route and status (after the error middleware has shaped it).
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = APIError.from(error).response
        }
        metrics.countRequest(route: ServerMetrics.knownRoutes.contains(request.uri.path) ? request.uri.path : "other",
                             status: Int(response.status.code))
        return response
    }
}

/// Every route but /health needs `Authorization: Bearer KEY` when the server has a key; keys
/// are compared in constant time.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: [UInt8]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/health" { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let given = header.hasPrefix("Bearer ") ? Array(header.utf8.dropFirst(7)) : []
        guard Self.constantTimeEqual(given, key) else {
            throw APIError(.unauthorized, given.isEmpty ? "missing API key: send Authorization: Bearer KEY" : "invalid API key",
                           type: "authentication_error", code: "invalid_api_key")
        }
        return try await next(request, context)
    }

    /// Equal bytes, in time that depends only on the lengths.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}

/// A request body decoded as `T`, or a 400 that names the field at fault.
func decodeBody<T: Decodable>(_ type: T.Type, _ request: Request, limit: Int) async throws -> T {
    let buffer: ByteBuffer
    do {
        buffer = try await request.body.collect(upTo: limit)
    } catch is NIOTooManyBytesError {
        throw APIError(.contentTooLarge, "the request body is larger than the \(limit) bytes the server accepts")
    }
    guard String(validating: buffer.readableBytesView, as: UTF8.self) != nil else {
        throw APIError.invalid("the request body is not valid UTF-8")
    }
    let data = Data(buffer: buffer)
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let DecodingError.keyNotFound(key, context) {
        throw APIError.invalid("missing field \(fieldPath(context.codingPath + [key]))", param: fieldPath(context.codingPath + [key]))
    } catch let DecodingError.typeMismatch(_, context) {
        throw APIError.invalid("field \(fieldPath(context.codingPath)) has the wrong type: \(context.debugDescription)", param: fieldPath(context.codingPath))
    } catch let DecodingError.valueNotFound(_, context) {
        throw APIError.invalid("field \(fieldPath(context.codingPath)) is null", param: fieldPath(context.codingPath))
    } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
        throw APIError.invalid("field \(fieldPath(context.codingPath)): \(context.debugDescription)", param: fieldPath(context.codingPath))
    } catch let error as APIError {
        throw error
    } catch {
        throw APIError.invalid("the request body is not valid JSON")
    }
}

func fieldPath(_ path: [any CodingKey]) -> String {
    path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
}

import BeckonCore
import Crypto
import Foundation
import _CryptoExtras

/// The push providers a workspace configures.
public enum PushProvider: String, Sendable, CaseIterable, Hashable {
    case apns, fcm, web

    /// The provider that delivers to a platform's tokens.
    public init(platform: PushPlatformName) {
        switch platform {
        case .ios: self = .apns
        case .android: self = .fcm
        case .web: self = .web
        }
    }

    /// How operators call it in messages.
    public var displayName: String {
        switch self {
        case .apns: return "APNs"
        case .fcm: return "FCM"
        case .web: return "Web Push"
        }
    }
}

/// A push credential that cannot be stored, naming the field (`private_key`) and the problem.
public struct PushCredentialError: Error, Sendable, CustomStringConvertible {
    public let field: String
    public let problem: String

    public init(_ field: String, _ problem: String) {
        self.field = field
        self.problem = problem
    }

    public var description: String { "\(field): \(problem)" }
}

/// APNs token (JWT ES256) authentication: the `.p8` key, its key id and team, the app's bundle id.
public struct APNsCredentials: Sendable, Hashable {
    public let teamID: String
    public let keyID: String
    /// The PKCS#8 PEM of the P-256 key (the secret: sealed at rest, never returned).
    public let privateKeyPEM: String
    public let bundleID: String
    /// `production` or `sandbox`.
    public let environment: String
    /// Scheme, host and port replacing Apple's (a regional or test endpoint).
    public let endpoint: String?

    /// Apple's host for the environment, or `endpoint`.
    public var baseURL: String {
        endpoint ?? (environment == "sandbox" ? "https://api.sandbox.push.apple.com" : "https://api.push.apple.com")
    }

    /// The signing key (validated when stored).
    func signingKey() throws -> P256.Signing.PrivateKey {
        try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
    }

    /// Validates `PUT /beckon/v1/push/apns`.
    public static func parse(_ body: JSONValue) throws(PushCredentialError) -> APNsCredentials {
        let object = try PushCredentialFields(body, known: ["team_id", "key_id", "private_key", "bundle_id", "environment", "endpoint"])
        let teamID = try object.identifier("team_id")
        let keyID = try object.identifier("key_id")
        let pem = try object.string("private_key")
        do {
            _ = try P256.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            throw PushCredentialError("private_key", PushCredentialFields.keyProblem(pem, wanted: "a P-256 (ES256) private key, the .p8 file's PEM"))
        }
        let bundleID = try object.string("bundle_id")
        guard bundleID.count <= 155, bundleID.contains("."), bundleID.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) else {
            throw PushCredentialError("bundle_id", "must be the app's bundle identifier, such as com.example.shop")
        }
        let environment = object.optionalString("environment") ?? "production"
        guard ["production", "sandbox"].contains(environment) else {
            throw PushCredentialError("environment", "must be production or sandbox")
        }
        return APNsCredentials(
            teamID: teamID, keyID: keyID, privateKeyPEM: pem, bundleID: bundleID, environment: environment,
            endpoint: try object.endpoint())
    }
}

/// FCM HTTP v1 with a Google service account (OAuth 2.0 access tokens from `token_uri`).
public struct FCMCredentials: Sendable, Hashable {
    public let projectID: String
    public let clientEmail: String
    public let privateKeyID: String?
    /// The PEM of the RSA key (the secret).
    public let privateKeyPEM: String
    public let tokenURI: String
    public let endpoint: String?

    public var baseURL: String { endpoint ?? "https://fcm.googleapis.com" }

    func signingKey() throws -> _RSA.Signing.PrivateKey {
        try _RSA.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
    }

    /// Validates `PUT /beckon/v1/push/fcm` `{"service_account": {…}, "endpoint"?}`.
    public static func parse(_ body: JSONValue) throws(PushCredentialError) -> FCMCredentials {
        let outer = try PushCredentialFields(body, known: ["service_account", "endpoint"])
        guard let account = body["service_account"], account.objectValue != nil else {
            throw PushCredentialError("service_account", "is required: the service-account JSON file as downloaded from Google Cloud")
        }
        let fields = try PushCredentialFields(account, known: nil, prefix: "service_account.")
        if let type = fields.optionalString("type"), type != "service_account" {
            throw PushCredentialError("service_account.type", "must be service_account, got '\(type)'")
        }
        let projectID = try fields.string("project_id")
        let clientEmail = try fields.string("client_email")
        guard clientEmail.contains("@") else { throw PushCredentialError("service_account.client_email", "must be the service account's e-mail address") }
        let pem = try fields.string("private_key")
        do {
            let key = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
            guard key.keySizeInBits >= 2048 else { throw PushCredentialError("service_account.private_key", "the RSA key has fewer than 2048 bits") }
        } catch let error as PushCredentialError {
            throw error
        } catch {
            throw PushCredentialError("service_account.private_key", PushCredentialFields.keyProblem(pem, wanted: "the service account's RSA private key (PEM)"))
        }
        let tokenURI = try fields.string("token_uri")
        guard let url = URLComponents(string: tokenURI), url.scheme == "https", url.host?.isEmpty == false else {
            throw PushCredentialError("service_account.token_uri", "must be an https URL such as https://oauth2.googleapis.com/token")
        }
        return FCMCredentials(
            projectID: projectID, clientEmail: clientEmail, privateKeyID: fields.optionalString("private_key_id"), privateKeyPEM: pem,
            tokenURI: tokenURI, endpoint: try outer.endpoint())
    }
}

/// The workspace's VAPID key pair (RFC 8292) and contact subject.
public struct WebPushCredentials: Sendable, Hashable {
    /// The raw 32-byte P-256 private key as base64url (the secret).
    public let privateKey: String
    /// base64url of the 65-byte uncompressed public point: the service worker's `applicationServerKey`.
    public let publicKey: String
    /// `mailto:` or `https:` contact sent in every VAPID token (`nil` until set).
    public let subject: String?

    public init(privateKey: String, publicKey: String, subject: String?) {
        self.privateKey = privateKey
        self.publicKey = publicKey
        self.subject = subject
    }

    /// A new key pair.
    public static func generate(subject: String?) -> WebPushCredentials {
        let key = P256.Signing.PrivateKey()
        return WebPushCredentials(
            privateKey: Base64URL.encode(key.rawRepresentation), publicKey: Base64URL.encode(key.publicKey.x963Representation), subject: subject)
    }

    func signingKey() throws -> P256.Signing.PrivateKey {
        guard let raw = Base64URL.decode(privateKey) else { throw PushCredentialError("vapid_private_key", "is not base64url") }
        return try P256.Signing.PrivateKey(rawRepresentation: raw)
    }

    /// Validates a VAPID subject.
    public static func validSubject(_ value: JSONValue?) throws(PushCredentialError) -> String {
        guard let subject = value?.stringValue, !subject.isEmpty else {
            throw PushCredentialError("subject", "is required: a mailto: address or an https: URL where the push services can reach you")
        }
        if subject.hasPrefix("mailto:"), subject.dropFirst(7).contains("@") { return subject }
        if let url = URLComponents(string: subject), url.scheme == "https", url.host?.isEmpty == false { return subject }
        throw PushCredentialError("subject", "must be a mailto: address (mailto:ops@example.com) or an https: URL")
    }
}

/// A workspace's push configuration as the channel uses it.
public struct PushCredentials: Sendable {
    public var apns: APNsCredentials?
    public var fcm: FCMCredentials?
    public var web: WebPushCredentials?
    /// Providers paused by a configuration error, with the reason (cleared when the credential is stored again).
    public var paused: [PushProvider: String]

    public init(apns: APNsCredentials? = nil, fcm: FCMCredentials? = nil, web: WebPushCredentials? = nil, paused: [PushProvider: String] = [:]) {
        self.apns = apns
        self.fcm = fcm
        self.web = web
        self.paused = paused
    }
}

/// Field access with the errors credentials need.
struct PushCredentialFields {
    let object: [String: JSONValue]
    let prefix: String

    init(_ body: JSONValue, known: Set<String>?, prefix: String = "") throws(PushCredentialError) {
        guard let object = body.objectValue else { throw PushCredentialError(prefix.isEmpty ? "body" : String(prefix.dropLast()), "must be a JSON object") }
        if let known {
            for key in object.keys.sorted() where !known.contains(key) {
                throw PushCredentialError(prefix + key, "unknown field (\(known.sorted().joined(separator: ", ")))")
            }
        }
        self.object = object
        self.prefix = prefix
    }

    func string(_ name: String) throws(PushCredentialError) -> String {
        guard let value = object[name], !value.isNull else { throw PushCredentialError(prefix + name, "is required") }
        guard let text = value.stringValue, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw PushCredentialError(prefix + name, "must be a non-empty string")
        }
        return text
    }

    func optionalString(_ name: String) -> String? {
        object[name]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Apple's 10-character key and team ids.
    func identifier(_ name: String) throws(PushCredentialError) -> String {
        let text = try string(name)
        guard text.count == 10, text.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) else {
            throw PushCredentialError(prefix + name, "must be the 10-character identifier from the Apple developer account (A–Z, 0–9)")
        }
        return text
    }

    /// `endpoint`: scheme, host and port only.
    func endpoint() throws(PushCredentialError) -> String? {
        guard let text = optionalString("endpoint") else { return nil }
        guard let url = URLComponents(string: text), let scheme = url.scheme, ["https", "http"].contains(scheme), let host = url.host, !host.isEmpty,
            url.path.isEmpty || url.path == "/", url.query == nil, url.user == nil
        else {
            throw PushCredentialError(prefix + "endpoint", "must be a base URL with scheme, host and optional port only, such as https://127.0.0.1:8443")
        }
        return "\(scheme)://\(host.contains(":") ? "[\(host)]" : host)\(url.port.map { ":\($0)" } ?? "")"
    }

    /// Why a PEM did not load: not PEM at all, or the wrong kind of key.
    static func keyProblem(_ pem: String, wanted: String) -> String {
        guard pem.contains("-----BEGIN"), pem.contains("-----END") else {
            return "is not a PEM (it must start with -----BEGIN PRIVATE KEY-----); expected \(wanted)"
        }
        if pem.contains("RSA PRIVATE KEY") || (try? _RSA.Signing.PrivateKey(pemRepresentation: pem)) != nil {
            return "is an RSA key; expected \(wanted)"
        }
        if (try? P256.Signing.PrivateKey(pemRepresentation: pem)) != nil { return "is a P-256 key; expected \(wanted)" }
        return "the PEM does not hold a private key Beckon can read; expected \(wanted)"
    }
}

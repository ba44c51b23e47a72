import BeckonChannels
import BeckonConnectedContent
import BeckonCore
import BeckonStorage
import Liquid

/// `POST /beckon/v1/campaigns/{id}/preview`: a campaign's messages for one user, rendered now by
/// the same code as a send — same profile fields, same `RenderContext`, same channel adapters.
public struct CampaignPreview: Sendable {
    /// The variant rendered.
    public let variant: String
    /// Channel → the rendered payload, as it would be sent (the idempotency key is added at send).
    public let messages: [String: JSONValue]
    /// The reason, when the template called `{% abort_message %}`.
    public let abortReason: String?
}

/// A preview that cannot be rendered: the channel, the error, and for Liquid its line and column.
public struct CampaignPreviewError: Error, Sendable, CustomStringConvertible {
    public let channel: String?
    public let message: String
    public let line: Int?
    public let column: Int?

    public var description: String { (channel.map { "\($0): " } ?? "") + message }
}

extension SendPipeline {
    /// Renders `campaign` for `userID` now. `variantName` picks a variant (default: the one the
    /// user is assigned to, or the first when the user is in the control group).
    public func preview(
        campaign: Campaign, userID: Int64, variantName: String?, triggerProperties: JSONValue?
    ) async throws -> CampaignPreview {
        let definition: CampaignDefinition
        do {
            definition = try CampaignDefinition.parse(campaign.definition, channels: channels)
        } catch {
            throw CampaignPreviewError(channel: nil, message: error.description, line: nil, column: nil)
        }
        let name: String
        if let variantName {
            guard definition.variants.contains(where: { $0.name == variantName }) else {
                throw CampaignPreviewError(
                    channel: nil, message: "variant: no variant named '\(variantName)' (variants: \(definition.variants.map(\.name).joined(separator: ", ")))",
                    line: nil, column: nil)
            }
            name = variantName
        } else {
            name = VariantPicker.pick(campaignKey: campaign.id, userID: userID, variants: definition.variants, controlPercent: definition.controlPercent)
                ?? definition.variants.first?.name ?? ""
        }
        let profiles = try await users.profiles(ids: [userID])
        if let unreadable = profiles.unreadable[userID] { throw CampaignPreviewError(channel: nil, message: unreadable, line: nil, column: nil) }
        guard let profile = profiles[userID] else {
            throw CampaignPreviewError(channel: nil, message: "the user no longer exists", line: nil, column: nil)
        }
        let settings = try await deliverySettings.settings(workspaceID: campaign.workspaceID)
        let rules = MessageRules(isAdvertising: definition.advertising, advertising: settings.advertising.map { AdvertisingNotice(optOutText: $0.optOutText) })
        let prepared = Self.prepare(definition, rules: rules, channels: channels)[name] ?? [:]
        let kind: DispatchKind = definition.delivery.type == DispatchKind.actionBased.rawValue ? .actionBased : .apiTriggered
        let context = RenderContext(
            user: profile,
            campaign: RenderContext.Campaign(apiID: campaign.id, name: definition.name, dispatchID: nil, sendID: nil, messageID: nil, variantName: name),
            triggerProperties: triggerProperties.map { (kind.triggerPropertiesKey, $0) })
        var messages: [String: JSONValue] = [:]
        for channel in prepared.keys.sorted() {
            let message: any PreparedMessage
            switch prepared[channel] {
            case .success(let value)?: message = value
            case .failure(let error)?: throw CampaignPreviewError(channel: channel, message: error.description, line: nil, column: nil)
            case nil: continue
            }
            do {
                let rendered = try await message.render(context.liquid, environment: environment(ConnectedContentContext(
                    workspaceID: campaign.workspaceID, campaignID: campaign.id, variant: name, externalID: profile["external_id"]?.stringValue,
                    channel: "preview")))
                messages[channel] = rendered.payload
            } catch let aborted as MessageAborted {
                return CampaignPreview(variant: name, messages: [:], abortReason: aborted.reason ?? "{% abort_message %} called")
            } catch let error as LiquidRenderError {
                throw CampaignPreviewError(channel: channel, message: error.message, line: error.line, column: nil)
            } catch let error as LiquidSyntaxError {
                throw CampaignPreviewError(channel: channel, message: error.message, line: error.line, column: error.column)
            } catch {
                throw CampaignPreviewError(channel: channel, message: "\(error)", line: nil, column: nil)
            }
        }
        return CampaignPreview(variant: name, messages: messages, abortReason: nil)
    }
}

import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

/// Earning rules, earning on an activity or content, and the points report.
extension PointsService {
    static func rule(_ r: Linli_Commerce_V1_EarningRule, id: UUID) throws(LinliError) -> PointsEarning.Rule {
        let kind = try ProtoEnum.decode(r.kind, PointsEarning.Kind.self, field: "rule.kind")
        let rounding = r.rounding == .unspecified ? .down : try ProtoEnum.decode(r.rounding, PointsEarning.Rounding.self, field: "rule.rounding")
        guard (1...PointsEarning.maxPerEvent).contains(r.points) else { throw LinliError.invalid("rule.points", "must be 1 to 1000000") }
        if kind.perAmount {
            guard (1...100_000_000).contains(r.perFen) else { throw LinliError.invalid("rule.per_fen", "must be 1 to 100000000 for this kind") }
        } else if r.perFen != 0 {
            throw LinliError.invalid("rule.per_fen", "must be 0: activities and content earn a fixed number")
        }
        guard (0...100_000_000).contains(r.minFen) else { throw LinliError.invalid("rule.min_fen", "must be 0 to 100000000") }
        guard (0...PointsEarning.maxPerEvent).contains(r.capPoints) else { throw LinliError.invalid("rule.cap_points", "must be 0 to 1000000") }
        guard (0...1095).contains(r.lifetimeDays) else { throw LinliError.invalid("rule.lifetime_days", "must be 0 to 1095") }
        let starts = r.hasStartsAt ? try Input.instant(r.startsAt, field: "rule.starts_at") : Date()
        let ends = r.hasEndsAt ? try Input.instant(r.endsAt, field: "rule.ends_at") : nil
        if let ends, ends <= starts { throw LinliError.invalid("rule.ends_at", "must be after starts_at") }
        return PointsEarning.Rule(
            id: id, community: try Input.id(r.communityID, field: "rule.community_id"), kind: kind,
            name: try Input.text(r.name, field: "rule.name", max: 60), points: r.points, perFen: r.perFen, rounding: rounding, minFen: r.minFen,
            capPoints: r.capPoints, startsAt: starts, endsAt: ends, enabled: r.enabled, lifetimeDays: r.lifetimeDays)
    }

    public func saveEarningRule(request: ServerRequest<Linli_Commerce_V1_SaveEarningRuleRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_EarningRule>
    {
        let m = request.message
        let existing = m.ruleID.isEmpty ? nil : try Input.id(m.ruleID, field: "rule_id", as: IDTag.Points.self).uuid
        let rule = try Self.rule(m.rule, id: existing ?? UUIDv7.make())
        return try await handler.write(request, context) { call in
            try Scope.requireCommunity(call.principal, rule.community)
            try await Scope.requireExists(rule.community, on: call.connection, logger: call.logger)
            return .init(try await PointsEarning().save(rule, new: existing == nil, on: call.connection, logger: call.logger))
        }
    }

    public func listEarningRules(request: ServerRequest<Linli_Commerce_V1_ListEarningRulesRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_ListEarningRulesResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { call in
            try Scope.requireCommunity(call.principal, community)
            let rules = try await PointsEarning().rules(community: community, on: call.connection, logger: call.logger)
            return .with { $0.rules = rules.map(Linli_Commerce_V1_EarningRule.init) }
        }
    }

    public func earnPoints(request: ServerRequest<Linli_Commerce_V1_EarnPointsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_EarnPointsResponse>
    {
        let m = request.message
        let resident = try Input.id(m.residentID, field: "resident_id", as: IDTag.Resident.self).uuid
        let kind = try ProtoEnum.decode(m.kind, PointsEarning.Kind.self, field: "kind")
        guard !kind.perAmount else { throw LinliError.invalid("kind", "must be ACTIVITY or CONTENT (fees and orders earn by themselves)") }
        let reason = try Input.text(m.reason, field: "reason", max: 100)
        let key = try Self.key(m.operationKey)
        let response = try await handler.write(request, context) { [store, cache] call in
            let (community, _) = try await store.lockResident(resident, for: call.principal, on: call.connection, logger: call.logger)
            let earned = try await PointsEarning().earn(
                kind, community: community, resident: resident, amountFen: 0, reason: reason, key: "\(kind.rawValue):\(key)",
                by: call.principal.subjectID, on: call.connection, logger: call.logger)
            await cache.forget(resident, tenant: call.tenant.id)
            let balance = try await store.balance(resident, on: call.connection, logger: call.logger)
            return Linli_Commerce_V1_EarnPointsResponse.with {
                $0.outcome = ProtoEnum.encode(earned.outcome)
                $0.points = earned.points
                $0.ruleID = earned.rule?.uuidString.lowercased() ?? ""
                $0.balance = .init(balance, source: "ledger")
            }
        }
        return await cached(response, \.balance, tenant: tenant(request.metadata))
    }

    public func getPointsReport(request: ServerRequest<Linli_Commerce_V1_GetPointsReportRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_PointsReport>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let from = try Input.localDate(m.from, field: "from")
        let to = try Input.localDate(m.to, field: "to")
        guard from < to else { throw LinliError.invalid("to", "must be after from") }
        return try await handler.read(request) { call in
            try Scope.requireCommunity(call.principal, community)
            let r = try await PointsEarning().report(community: community, from: from, to: to, on: call.connection, logger: call.logger)
            return .with {
                $0.communityID = community.description
                $0.from = from
                $0.to = to
                $0.granted = r.granted
                $0.spent = r.spent
                $0.reversed = r.reversed
                $0.expired = r.expired
                $0.refusedGrants = r.refusedGrants
                $0.budgetLeft = r.budget?.left ?? 0
                $0.outstanding = r.budget?.outstanding ?? 0
                $0.merchants = r.merchants.map { row in
                    .with {
                        $0.merchantID = row.merchant.uuidString.lowercased()
                        $0.merchantName = row.name
                        $0.points = row.points
                        $0.orders = row.orders
                    }
                }
            }
        }
    }
}

extension Linli_Commerce_V1_EarningRule {
    init(_ r: PointsEarning.Rule) {
        self.init()
        id = r.id.uuidString.lowercased()
        communityID = r.community.description
        kind = ProtoEnum.encode(r.kind)
        name = r.name
        points = r.points
        perFen = r.perFen
        rounding = ProtoEnum.encode(r.rounding)
        minFen = r.minFen
        capPoints = r.capPoints
        startsAt = Google_Protobuf_Timestamp(date: r.startsAt)
        if let ends = r.endsAt { endsAt = Google_Protobuf_Timestamp(date: ends) }
        enabled = r.enabled
        lifetimeDays = r.lifetimeDays
    }
}

extension Linli_Commerce_V1_SaveEarningRuleRequest: IdempotentRequest {}
extension Linli_Commerce_V1_EarnPointsRequest: IdempotentRequest {}

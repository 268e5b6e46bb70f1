import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import SwiftProtobuf

/// The settings, refund and invoice RPCs of `linli.billing.v1.BillingService`.
extension BillingService {
    public func getBillingSettings(request: ServerRequest<Linli_Billing_V1_GetBillingSettingsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_BillingSettings>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [refunds] call in
            let order = try await refunds.allocation(community: community, for: call.principal, on: call.connection, logger: call.logger)
            return .with {
                $0.communityID = community.description
                $0.allocation = ProtoEnum.encode(order)
            }
        }
    }

    public func setBillingSettings(request: ServerRequest<Linli_Billing_V1_SetBillingSettingsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_BillingSettings>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let order = try ProtoEnum.decode(m.allocation, PaymentStore.AllocationOrder.self, field: "allocation")
        guard order != .asListed else { throw LinliError.invalid("allocation", "as listed is for a single payment, not a setting") }
        return try await handler.write(request, context) { [refunds] call in
            try await refunds.setAllocation(order, community: community, by: call.principal, on: call.connection, logger: call.logger)
            return Linli_Billing_V1_BillingSettings.with {
                $0.communityID = community.description
                $0.allocation = ProtoEnum.encode(order)
            }
        }
    }

    public func requestRefund(request: ServerRequest<Linli_Billing_V1_RequestRefundRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_RefundResponse>
    {
        let m = request.message
        let payment = try Input.id(m.paymentID, field: "payment_id", as: IDTag.Payment.self).uuid
        let reason = try Input.text(m.reason, field: "reason", min: 2, max: 200)
        guard m.lines.count <= 100 else { throw LinliError.invalid("lines", "at most 100") }
        var lines: [RefundStore.Line] = []
        for (index, line) in m.lines.enumerated() {
            let bill = try Input.id(line.billID, field: "lines[\(index)].bill_id", as: IDTag.Bill.self).uuid
            guard !lines.contains(where: { $0.bill == bill }) else { throw LinliError.invalid("lines[\(index)].bill_id", "appears twice") }
            guard (1...Self.maxFen).contains(line.amountFen) else {
                throw LinliError.invalid("lines[\(index)].amount_fen", "must be from 1 to \(Self.maxFen)")
            }
            lines.append(.init(bill: bill, amountFen: line.amountFen))
        }
        return try await handler.write(request, context) { [refunds] call in
            let refund = try await refunds.request(
                payment: payment, lines: lines, reason: reason, waive: m.waive, by: call.principal,
                on: call.connection, logger: call.logger)
            return Linli_Billing_V1_RefundResponse.with { $0.refund = .init(refund) }
        }
    }

    public func approveRefund(request: ServerRequest<Linli_Billing_V1_DecideRefundRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_RefundResponse>
    {
        try await decideRefund(request, "ApproveRefund", approve: true)
    }

    public func rejectRefund(request: ServerRequest<Linli_Billing_V1_DecideRefundRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_RefundResponse>
    {
        try await decideRefund(request, "RejectRefund", approve: false)
    }

    private func decideRefund(
        _ request: ServerRequest<Linli_Billing_V1_DecideRefundRequest>, _ method: String,
        approve: Bool
    ) async throws -> ServerResponse<Linli_Billing_V1_RefundResponse> {
        let m = request.message
        let id = try Input.id(m.refundID, field: "refund_id", as: IDTag.Refund.self).uuid
        let note = approve ? try Input.text(m.note, field: "note", min: 0, max: 200) : try Input.text(m.note, field: "note", min: 2, max: 200)
        return try await handler.write(m, metadata: request.metadata, method: method) { [refunds] call in
            let refund =
                approve
                ? try await refunds.approve(id, note: note, by: call.principal, on: call.connection, logger: call.logger)
                : try await refunds.reject(id, note: note, by: call.principal, on: call.connection, logger: call.logger)
            return Linli_Billing_V1_RefundResponse.with { $0.refund = .init(refund) }
        }
    }

    public func listRefunds(request: ServerRequest<Linli_Billing_V1_ListRefundsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_ListRefundsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let state = m.state == .unspecified ? nil : try ProtoEnum.decode(m.state, RefundStore.State.self, field: "state")
        return try await handler.read(request) { [refunds] call in
            let found = try await refunds.list(community: community, state: state, for: call.principal, on: call.connection, logger: call.logger)
            return .with { $0.refunds = found.map { .init($0) } }
        }
    }

    public func writeOffBill(request: ServerRequest<Linli_Billing_V1_WriteOffBillRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_WriteOffBillResponse>
    {
        let m = request.message
        let bill = try Input.id(m.billID, field: "bill_id", as: IDTag.Bill.self).uuid
        let reason = try Input.text(m.reason, field: "reason", min: 2, max: 200)
        guard (0...Self.maxFen).contains(m.amountFen) else { throw LinliError.invalid("amount_fen", "must be from 0 to \(Self.maxFen)") }
        guard m.amountFen > 0 || m.waiveLateFee else { throw LinliError.invalid("amount_fen", "give an amount, or waive the late fee") }
        return try await handler.write(request, context) { [refunds] call in
            let (after, total) = try await refunds.writeOff(
                bill: bill, amountFen: m.amountFen, waiveLateFee: m.waiveLateFee, reason: reason,
                by: call.principal, on: call.connection, logger: call.logger)
            return Linli_Billing_V1_WriteOffBillResponse.with {
                $0.bill = .init(after)
                $0.writtenOffFen = total
            }
        }
    }

    public func issueInvoices(request: ServerRequest<Linli_Billing_V1_IssueInvoicesRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_IssueInvoicesResponse>
    {
        let m = request.message
        let payment = try Input.id(m.paymentID, field: "payment_id", as: IDTag.Payment.self).uuid
        guard (1...20).contains(m.invoices.count) else { throw LinliError.invalid("invoices", "give 1 to 20 invoices") }
        var wanted: [RefundStore.InvoiceRequest] = []
        for (index, invoice) in m.invoices.enumerated() {
            let title = try Input.text(invoice.title, field: "invoices[\(index)].title", max: 100)
            let taxNo = invoice.taxNo.uppercased()
            guard taxNo.isEmpty || ([15, 18, 20].contains(taxNo.count) && taxNo.allSatisfy { $0.isASCII && ($0.isNumber || $0.isUppercase) }) else {
                throw LinliError.invalid("invoices[\(index)].tax_no", "must be 15, 18 or 20 letters and digits")
            }
            guard !invoice.billIds.isEmpty else { throw LinliError.invalid("invoices[\(index)].bill_ids", "name the bills the invoice is for") }
            let bills = try Input.ids(invoice.billIds, field: "invoices[\(index)].bill_ids", as: IDTag.Bill.self).map(\.uuid)
            wanted.append(.init(title: title, taxNo: taxNo, bills: bills))
        }
        return try await handler.write(request, context) { [refunds] call in
            let issued = try await refunds.issueInvoices(payment: payment, wanted, by: call.principal, on: call.connection, logger: call.logger)
            return Linli_Billing_V1_IssueInvoicesResponse.with { $0.invoices = issued.map { .init($0) } }
        }
    }

    public func listInvoices(request: ServerRequest<Linli_Billing_V1_ListInvoicesRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_ListInvoicesResponse>
    {
        let payment = try Input.id(request.message.paymentID, field: "payment_id", as: IDTag.Payment.self).uuid
        return try await handler.read(request) { [refunds] call in
            let found = try await refunds.invoices(payment: payment, for: call.principal, on: call.connection, logger: call.logger)
            return .with { $0.invoices = found.map { .init($0) } }
        }
    }
}

extension Linli_Billing_V1_SetBillingSettingsRequest: IdempotentRequest {}
extension Linli_Billing_V1_RequestRefundRequest: IdempotentRequest {}
extension Linli_Billing_V1_DecideRefundRequest: IdempotentRequest {}
extension Linli_Billing_V1_IssueInvoicesRequest: IdempotentRequest {}
extension Linli_Billing_V1_WriteOffBillRequest: IdempotentRequest {}

extension Linli_Billing_V1_Refund {
    init(_ r: RefundStore.Refund) {
        self.init()
        id = r.id.uuidString.lowercased()
        paymentID = r.payment.uuidString.lowercased()
        receiptNo = r.receiptNo
        state = ProtoEnum.encode(r.state)
        amountFen = r.amountFen
        reason = r.reason
        waive = r.waive
        lines = r.lines.map { line in
            .with {
                $0.billID = line.bill.uuidString.lowercased(); $0.amountFen = line.amountFen
            }
        }
        requestedBy = r.requestedBy.description
        requestedAt = Google_Protobuf_Timestamp(date: r.requestedAt)
        decidedBy = r.decidedBy?.description ?? ""
        if let at = r.decidedAt { decidedAt = Google_Protobuf_Timestamp(date: at) }
        decisionNote = r.decisionNote
        payouts = r.payouts.map { payout in
            .with {
                $0.billID = payout.bill.uuidString.lowercased()
                $0.method = ProtoEnum.encode(payout.method)
                $0.amountFen = payout.amountFen
            }
        }
    }
}

extension Linli_Billing_V1_Invoice {
    init(_ i: RefundStore.Invoice) {
        self.init()
        id = i.id.uuidString.lowercased()
        paymentID = i.payment.uuidString.lowercased()
        invoiceNo = i.invoiceNo
        title = i.title
        taxNo = i.taxNo
        amountFen = i.amountFen
        billIds = i.bills.map { $0.uuidString.lowercased() }
        void = i.voidReason != nil
        voidReason = i.voidReason ?? ""
        issuedAt = Google_Protobuf_Timestamp(date: i.issuedAt)
    }
}

import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import SwiftProtobuf

/// The resident's own view: GetMyBilling and GetMyReceipt.
extension BillingService {
    public func getMyBilling(request: ServerRequest<Linli_Billing_V1_GetMyBillingRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_GetMyBillingResponse>
    {
        return try await handler.read(request) { [cashier] call in
            let (rooms, own) = try await cashier.myBilling(
                openOnly: request.message.openOnly, for: call.principal, on: call.connection, logger: call.logger)
            return .with {
                $0.rooms = rooms.map { room in
                    .with {
                        $0.roomID = room.room.description
                        $0.roomLabel = room.label
                        $0.communityID = room.community.description
                        $0.bills = room.bills.map(Linli_Billing_V1_Bill.init)
                        $0.totalDueFen = room.totalDueFen
                        $0.prepaid = room.prepaid.map(Linli_Billing_V1_PrepaidAccount.init)
                        $0.receipts = room.receipts.map { receipt in
                            .with {
                                $0.paymentID = receipt.payment.uuidString.lowercased()
                                $0.receiptNo = receipt.receiptNo
                                $0.totalFen = receipt.totalFen
                                $0.paidAt = Google_Protobuf_Timestamp(date: receipt.paidAt)
                                $0.void = receipt.void
                            }
                        }
                    }
                }
                $0.ownPrepaid = own.map { mine in
                    .with {
                        $0.communityID = mine.community.description
                        $0.residentID = mine.resident.description
                        $0.accounts = mine.accounts.map(Linli_Billing_V1_PrepaidAccount.init)
                    }
                }
            }
        }
    }

    public func getMyReceipt(request: ServerRequest<Linli_Billing_V1_GetReceiptRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Billing_V1_GetReceiptResponse>
    {
        let payment = try Input.id(request.message.paymentID, field: "payment_id", as: IDTag.Payment.self).uuid
        return try await handler.read(request) { [cashier] call in
            let receipt = try await cashier.myReceipt(payment, for: call.principal, on: call.connection, logger: call.logger)
            return .with { $0.receipt = .init(receipt) }
        }
    }
}

extension Linli_Billing_V1_PrepaidAccount {
    init(_ account: PaymentStore.PrepaidAccount) {
        self.init()
        prepaidType = ProtoEnum.encode(account.type)
        balanceFen = account.balanceFen
        frozen = account.frozen
    }
}

/// What an RPC needs the caller to be allowed to do.
public enum Permission: String, Sendable, CaseIterable {
    /// Anyone, without credentials (health, login).
    case `public`
    /// Any authenticated principal.
    case authenticated
    case userManage = "user.manage"
    case apiKeyManage = "apikey.manage"
    case noticePublish = "notice.publish"
    case noticeRead = "notice.read"
    case noticeStats = "notice.stats"
    case tenantManage = "tenant.manage"
    case communityCreate = "community.create"
    case nationalRead = "national.read"
    case repairFile = "repair.file"
    case workOrderRead = "workorder.read"
    case workOrderAct = "workorder.act"
    case workOrderConfigure = "workorder.configure"
    case workOrderStats = "workorder.stats"
    case dutySelf = "duty.self"
    case complaintFile = "complaint.file"
    case complaintRead = "complaint.read"
    case complaintHandle = "complaint.handle"
    case hotlineImport = "hotline.import"
    case hotlineRead = "hotline.read"
    case hotlineHandle = "hotline.handle"
    case visitorRegister = "visitor.register"
    case visitorGate = "visitor.gate"
    case visitorRead = "visitor.read"
    case parcelDesk = "parcel.desk"
    case parcelRead = "parcel.read"
    case itemApply = "item.apply"
    case itemReview = "item.review"
    case itemGate = "item.gate"
    case itemRead = "item.read"
    case baseDataManage = "basedata.manage"
    case baseDataRead = "basedata.read"
    case personalReveal = "personal.reveal"
    case personalAudit = "personal.audit"
    case petRegister = "pet.register"
    case petRead = "pet.read"
    case patrolManage = "patrol.manage"
    case patrolWork = "patrol.work"
    case workOrderVisit = "workorder.visit"
    case billingConfigure = "billing.configure"
    case billingCashier = "billing.cashier"
    case billingRead = "billing.read"
    case billingApprove = "billing.approve"  // refunds and write-offs: a second person's decision
    case meterRecord = "meter.record"
    case billingOwn = "billing.own"  // a resident's own bills, balances and receipts
    case deviceManage = "device.manage"  // register devices, issue secrets, disable and revoke
    case deviceRead = "device.read"
    case deviceCommand = "device.command"  // open a door, reboot a device
    case accessManage = "access.manage"  // doors, credentials, access settings
    case accessRead = "access.read"  // doors, the access log, whitelist status
    case accessOpen = "access.open"  // open a door from the app (residents: the doors they may use)
    case accessOwn = "access.own"  // one's own QR code and access history
    case accessFace = "access.face"  // withdraw face consent (residents: their own)
    case parkingManage = "parking.manage"  // lots, lanes, fee rules, permits, lists, coupons, corrections
    case parkingRead = "parking.read"  // lots, sessions, reports
    case parkingPay = "parking.pay"  // quote and pay a stay (residents: any plate, as a driver would at the lane)
    case parkingVisitor = "parking.visitor"  // register a visitor's car (residents: for themselves)
    case alarmRead = "alarm.read"  // device and fire alarms, fire points, fire reports
    case alarmHandle = "alarm.handle"  // acknowledge, assign and clear alarms
    case pointsManage = "points.manage"  // fund the points budget, grant, hold and settle points, check the cache
    case pointsOwn = "points.own"  // a resident's own points balance
    case pointsEarn = "points.earn"  // points for an activity or content, by the rule in force
    case commerceManage = "commerce.manage"  // review merchants and their communities, categories, marketplace settings
    case commerceShop = "commerce.shop"  // a merchant's shop: apply, goods, stock, replies to reviews
    case commerceFulfil = "commerce.fulfil"  // ship orders, handle returns, see merchants (merchants: their own)
    case commerceBuy = "commerce.buy"  // quote, order, pay, confirm, review, return (residents: their own)
    case couponIssue = "coupon.issue"  // coupon templates (merchants: their shop's; managers: the property's)
    case brandSave = "brand.save"  // brands (merchants: their shop's; managers: the platform's)
    case commerceBrowse = "commerce.browse"  // categories, goods, reviews, orders one may see, images, cancelling an order

    /// The permissions each role holds: the single source of truth for authorization.
    public static let grants: [Role: Set<Permission>] = [
        .resident: [
            .noticeRead, .repairFile, .workOrderRead, .workOrderAct, .complaintFile, .complaintRead,
            .visitorRegister, .visitorRead, .parcelRead, .itemApply, .itemRead, .petRegister, .petRead,
            .billingOwn, .accessOpen, .accessOwn, .accessFace, .parkingPay, .parkingVisitor, .pointsOwn, .commerceBuy, .commerceBrowse,
        ],
        .manager: [
            .userManage, .apiKeyManage, .noticePublish, .noticeRead, .noticeStats,
            .repairFile, .workOrderRead, .workOrderAct, .workOrderConfigure, .workOrderStats,
            .complaintRead, .complaintHandle, .hotlineImport, .hotlineRead, .hotlineHandle,
            .visitorRegister, .visitorGate, .visitorRead, .parcelDesk, .parcelRead, .itemReview, .itemRead,
            .baseDataManage, .baseDataRead, .personalReveal, .personalAudit, .petRegister, .petRead,
            .patrolManage, .patrolWork, .workOrderVisit, .billingConfigure, .billingCashier, .billingRead, .billingApprove,
            .meterRecord, .deviceManage, .deviceRead, .deviceCommand, .accessManage, .accessRead, .accessOpen, .accessOwn,
            .accessFace, .parkingManage, .parkingRead, .parkingPay, .parkingVisitor, .alarmRead, .alarmHandle, .pointsManage, .pointsOwn, .pointsEarn,
            .commerceManage, .commerceFulfil, .commerceBrowse, .couponIssue, .brandSave,
        ],
        .cashier: [
            .noticeRead, .repairFile, .workOrderRead, .complaintRead, .visitorRegister, .visitorRead, .parcelDesk, .parcelRead,
            .baseDataRead, .petRead, .workOrderVisit, .billingCashier, .billingRead, .accessOwn, .parkingRead, .parkingPay, .pointsOwn,
            .commerceBrowse,
        ],
        .technician: [
            .noticeRead, .repairFile, .workOrderRead, .workOrderAct, .dutySelf, .baseDataRead, .patrolWork, .meterRecord,
            .deviceRead, .accessOwn, .alarmRead,
        ],
        .guardian: [
            .noticeRead, .repairFile, .workOrderRead, .visitorRegister, .visitorGate, .visitorRead, .parcelDesk, .parcelRead,
            .itemGate, .itemRead, .baseDataRead, .petRead, .patrolWork, .deviceRead, .deviceCommand, .accessRead, .accessOpen,
            .accessOwn, .parkingRead, .parkingPay, .parkingVisitor, .alarmRead, .alarmHandle,
        ],
        .merchant: [.noticeRead, .commerceShop, .commerceFulfil, .commerceBrowse, .couponIssue, .brandSave],
        .government: [.noticeRead, .noticeStats, .workOrderStats, .hotlineRead],
        .operator: [.tenantManage, .communityCreate, .nationalRead],
        .partner: [.noticeRead, .noticePublish, .hotlineImport, .deviceRead, .deviceCommand, .pointsEarn],
    ]

    /// Whether `role` holds this permission.
    public func isGranted(to role: Role) -> Bool {
        switch self {
        case .public, .authenticated: true
        default: Permission.grants[role, default: []].contains(self)
        }
    }
}

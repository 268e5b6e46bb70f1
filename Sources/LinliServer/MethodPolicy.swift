import LinliCore

/// How often a principal may call a class of methods.
public enum RateClass: String, Sendable, CaseIterable {
    /// `login`: sign-in attempts per address. `account`: failed sign-ins per account, from any
    /// address. `authfail`: calls with a bad session token or API key, per address.
    case read, write, login, account, authfail

    var defaultLimit: RateLimit {
        switch self {
        case .read: RateLimit(perSecond: 100, burst: 200)
        case .write: RateLimit(perSecond: 20, burst: 40)
        case .login: RateLimit(perSecond: 2, burst: 10)
        case .account: RateLimit(perSecond: 0.1, burst: 10)
        case .authfail: RateLimit(perSecond: 2, burst: 30)
        }
    }
}

/// A GCRA limit: a sustained rate and how many calls may come at once.
public struct RateLimit: Sendable, Equatable {
    public var perSecond: Double
    public var burst: Int

    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }
}

/// The one table of every RPC: the permission it needs and its rate class (nil: not limited).
/// A method missing here is refused, so a new RPC cannot ship without a decision.
public enum MethodPolicy {
    public struct Rule: Sendable {
        public var permission: Permission
        public var rateClass: RateClass?
    }

    public static let rules: [String: Rule] = [
        "grpc.health.v1.Health/Check": Rule(permission: .public, rateClass: nil),
        "grpc.health.v1.Health/Watch": Rule(permission: .public, rateClass: nil),

        "linli.identity.v1.IdentityService/Login": Rule(permission: .public, rateClass: .login),
        "linli.identity.v1.IdentityService/Logout": Rule(permission: .authenticated, rateClass: .write),
        "linli.identity.v1.IdentityService/WhoAmI": Rule(permission: .authenticated, rateClass: .read),
        "linli.identity.v1.IdentityService/CreateUser": Rule(permission: .userManage, rateClass: .write),
        "linli.identity.v1.IdentityService/RevokeUserSessions": Rule(permission: .userManage, rateClass: .write),
        "linli.identity.v1.IdentityService/SetUserStatus": Rule(permission: .userManage, rateClass: .write),
        "linli.identity.v1.IdentityService/SetUserScope": Rule(permission: .userManage, rateClass: .write),
        "linli.identity.v1.IdentityService/CreateApiKey": Rule(permission: .apiKeyManage, rateClass: .write),
        "linli.identity.v1.IdentityService/ListApiKeys": Rule(permission: .apiKeyManage, rateClass: .read),
        "linli.identity.v1.IdentityService/RevokeApiKey": Rule(permission: .apiKeyManage, rateClass: .write),

        "linli.platform.v1.PlatformService/CreateTenant": Rule(permission: .tenantManage, rateClass: .write),
        "linli.platform.v1.PlatformService/ListTenants": Rule(permission: .tenantManage, rateClass: .read),
        "linli.platform.v1.PlatformService/SuspendTenant": Rule(permission: .tenantManage, rateClass: .write),
        "linli.platform.v1.PlatformService/CreateCommunity": Rule(permission: .communityCreate, rateClass: .write),
        "linli.platform.v1.PlatformService/GetNationalOverview": Rule(permission: .nationalRead, rateClass: .read),

        "linli.property.v1.NoticeService/PublishNotice": Rule(permission: .noticePublish, rateClass: .write),
        "linli.property.v1.NoticeService/ListNotices": Rule(permission: .noticeRead, rateClass: .read),
        "linli.property.v1.NoticeService/MarkNoticeRead": Rule(permission: .noticeRead, rateClass: .write),
        "linli.property.v1.NoticeService/GetNoticeReadStats": Rule(permission: .noticeStats, rateClass: .read),

        "linli.property.v1.WorkOrderService/ConfigureCategory": Rule(permission: .workOrderConfigure, rateClass: .write),
        "linli.property.v1.WorkOrderService/SetTechnician": Rule(permission: .workOrderConfigure, rateClass: .write),
        "linli.property.v1.WorkOrderService/SetMyDuty": Rule(permission: .dutySelf, rateClass: .write),
        "linli.property.v1.WorkOrderService/FileRepair": Rule(permission: .repairFile, rateClass: .write),
        "linli.property.v1.WorkOrderService/GetWorkOrder": Rule(permission: .workOrderRead, rateClass: .read),
        "linli.property.v1.WorkOrderService/ListWorkOrders": Rule(permission: .workOrderRead, rateClass: .read),
        "linli.property.v1.WorkOrderService/TransitionWorkOrder": Rule(permission: .workOrderAct, rateClass: .write),
        "linli.property.v1.WorkOrderService/GetWorkloadStats": Rule(permission: .workOrderStats, rateClass: .read),
        "linli.property.v1.WorkOrderService/RecordReturnVisit": Rule(permission: .workOrderVisit, rateClass: .write),

        "linli.property.v1.ComplaintService/FileComplaint": Rule(permission: .complaintFile, rateClass: .write),
        "linli.property.v1.ComplaintService/ReplyComplaint": Rule(permission: .complaintRead, rateClass: .write),
        "linli.property.v1.ComplaintService/ResolveComplaint": Rule(permission: .complaintHandle, rateClass: .write),
        "linli.property.v1.ComplaintService/RateComplaint": Rule(permission: .complaintFile, rateClass: .write),
        "linli.property.v1.ComplaintService/WithdrawComplaint": Rule(permission: .complaintFile, rateClass: .write),
        "linli.property.v1.ComplaintService/GetComplaint": Rule(permission: .complaintRead, rateClass: .read),
        "linli.property.v1.ComplaintService/ListComplaints": Rule(permission: .complaintRead, rateClass: .read),

        "linli.property.v1.HotlineService/ImportHotlineTicket": Rule(permission: .hotlineImport, rateClass: .write),
        "linli.property.v1.HotlineService/AddHotlineStep": Rule(permission: .hotlineHandle, rateClass: .write),
        "linli.property.v1.HotlineService/ReplyHotlineTicket": Rule(permission: .hotlineHandle, rateClass: .write),
        "linli.property.v1.HotlineService/CloseHotlineTicket": Rule(permission: .hotlineHandle, rateClass: .write),
        "linli.property.v1.HotlineService/GetHotlineTicket": Rule(permission: .hotlineRead, rateClass: .read),
        "linli.property.v1.HotlineService/ListHotlineTickets": Rule(permission: .hotlineRead, rateClass: .read),

        "linli.property.v1.VisitorService/RegisterVisitor": Rule(permission: .visitorRegister, rateClass: .write),
        "linli.property.v1.VisitorService/VerifyVisitorPass": Rule(permission: .visitorGate, rateClass: .write),
        "linli.property.v1.VisitorService/RecordVisitorExit": Rule(permission: .visitorGate, rateClass: .write),
        "linli.property.v1.VisitorService/RevokeVisitorPass": Rule(permission: .visitorRegister, rateClass: .write),
        "linli.property.v1.VisitorService/ListVisitorPasses": Rule(permission: .visitorRead, rateClass: .read),

        "linli.property.v1.ParcelService/LogParcel": Rule(permission: .parcelDesk, rateClass: .write),
        "linli.property.v1.ParcelService/PickUpParcel": Rule(permission: .parcelDesk, rateClass: .write),
        "linli.property.v1.ParcelService/ListWaitingParcels": Rule(permission: .parcelRead, rateClass: .read),

        "linli.property.v1.ItemReleaseService/ApplyItemRelease": Rule(permission: .itemApply, rateClass: .write),
        "linli.property.v1.ItemReleaseService/ReviewItemRelease": Rule(permission: .itemReview, rateClass: .write),
        "linli.property.v1.ItemReleaseService/VerifyItemRelease": Rule(permission: .itemGate, rateClass: .write),
        "linli.property.v1.ItemReleaseService/ListItemReleases": Rule(permission: .itemRead, rateClass: .read),

        "linli.property.v1.BaseDataService/CreateBuilding": Rule(permission: .baseDataManage, rateClass: .write),
        "linli.property.v1.BaseDataService/CreateRoom": Rule(permission: .baseDataManage, rateClass: .write),
        "linli.property.v1.BaseDataService/SetRoomState": Rule(permission: .baseDataManage, rateClass: .write),
        "linli.property.v1.BaseDataService/ListRooms": Rule(permission: .baseDataRead, rateClass: .read),
        "linli.property.v1.BaseDataService/RegisterResident": Rule(permission: .baseDataManage, rateClass: .write),
        "linli.property.v1.BaseDataService/MoveIn": Rule(permission: .baseDataManage, rateClass: .write),
        "linli.property.v1.BaseDataService/MoveOut": Rule(permission: .baseDataManage, rateClass: .write),
        "linli.property.v1.BaseDataService/VerifyResident": Rule(permission: .baseDataManage, rateClass: .write),
        "linli.property.v1.BaseDataService/GetResident": Rule(permission: .baseDataRead, rateClass: .read),
        "linli.property.v1.BaseDataService/Search": Rule(permission: .baseDataRead, rateClass: .read),
        "linli.property.v1.BaseDataService/CreateParkingSpace": Rule(permission: .baseDataManage, rateClass: .write),
        "linli.property.v1.BaseDataService/RegisterVehicle": Rule(permission: .baseDataManage, rateClass: .write),
        "linli.property.v1.BaseDataService/ListStaff": Rule(permission: .baseDataRead, rateClass: .read),
        "linli.property.v1.BaseDataService/ImportBaseData": Rule(permission: .baseDataManage, rateClass: .write),
        "linli.property.v1.BaseDataService/ListPersonalDataReads": Rule(permission: .personalAudit, rateClass: .read),

        "linli.property.v1.PetService/RegisterPet": Rule(permission: .petRegister, rateClass: .write),
        "linli.property.v1.PetService/RecordVaccination": Rule(permission: .petRegister, rateClass: .write),
        "linli.property.v1.PetService/ListPets": Rule(permission: .petRead, rateClass: .read),
        "linli.property.v1.PetService/ListDueVaccinations": Rule(permission: .petRead, rateClass: .read),

        "linli.property.v1.PatrolService/CreateCheckpoint": Rule(permission: .patrolManage, rateClass: .write),
        "linli.property.v1.PatrolService/CreateRoute": Rule(permission: .patrolManage, rateClass: .write),
        "linli.property.v1.PatrolService/CreatePlan": Rule(permission: .patrolManage, rateClass: .write),
        "linli.property.v1.PatrolService/StopPlan": Rule(permission: .patrolManage, rateClass: .write),
        "linli.property.v1.PatrolService/CreateTemporaryTask": Rule(permission: .patrolManage, rateClass: .write),
        "linli.property.v1.PatrolService/ReviewPatrolTask": Rule(permission: .patrolManage, rateClass: .write),
        "linli.property.v1.PatrolService/ListPatrolTasks": Rule(permission: .patrolWork, rateClass: .read),
        "linli.property.v1.PatrolService/GetPatrolTask": Rule(permission: .patrolWork, rateClass: .read),
        "linli.property.v1.PatrolService/CheckIn": Rule(permission: .patrolWork, rateClass: .write),
        "linli.property.v1.PatrolService/FinishPatrolTask": Rule(permission: .patrolWork, rateClass: .write),

        "linli.property.v1.InboxService/ListNotifications": Rule(permission: .authenticated, rateClass: .read),
        "linli.property.v1.InboxService/MarkNotificationsRead": Rule(permission: .authenticated, rateClass: .write),

        "linli.billing.v1.BillingService/CreateFeeItem": Rule(permission: .billingConfigure, rateClass: .write),
        "linli.billing.v1.BillingService/BindFeeItem": Rule(permission: .billingConfigure, rateClass: .write),
        "linli.billing.v1.BillingService/GenerateBills": Rule(permission: .billingConfigure, rateClass: .write),
        "linli.billing.v1.BillingService/ListBills": Rule(permission: .billingRead, rateClass: .read),
        "linli.billing.v1.BillingService/Pay": Rule(permission: .billingCashier, rateClass: .write),
        "linli.billing.v1.BillingService/TopUpPrepaid": Rule(permission: .billingCashier, rateClass: .write),
        "linli.billing.v1.BillingService/GetPrepaidBalance": Rule(permission: .billingRead, rateClass: .read),
        "linli.billing.v1.BillingService/CheckLedger": Rule(permission: .billingConfigure, rateClass: .read),
        "linli.billing.v1.BillingService/SetPrepaidFrozen": Rule(permission: .billingConfigure, rateClass: .write),
        "linli.billing.v1.BillingService/WithdrawPrepaid": Rule(permission: .billingCashier, rateClass: .write),
        "linli.billing.v1.BillingService/RunPrepaidOffset": Rule(permission: .billingConfigure, rateClass: .write),
        "linli.billing.v1.BillingService/GetReceipt": Rule(permission: .billingRead, rateClass: .read),
        "linli.billing.v1.BillingService/VoidReceipt": Rule(permission: .billingConfigure, rateClass: .write),
        "linli.billing.v1.BillingService/GetArrears": Rule(permission: .billingRead, rateClass: .read),
        "linli.billing.v1.BillingService/GetBillingSummary": Rule(permission: .billingRead, rateClass: .read),
        "linli.billing.v1.BillingService/GetDailyClose": Rule(permission: .billingRead, rateClass: .read),
        "linli.billing.v1.BillingService/CollectDeposit": Rule(permission: .billingCashier, rateClass: .write),
        "linli.billing.v1.BillingService/ConvertDepositToPrepaid": Rule(permission: .billingCashier, rateClass: .write),
        "linli.billing.v1.BillingService/RefundDeposit": Rule(permission: .billingConfigure, rateClass: .write),
        "linli.billing.v1.BillingService/ListDeposits": Rule(permission: .billingRead, rateClass: .read),
        "linli.billing.v1.BillingService/RecordMeterReading": Rule(permission: .meterRecord, rateClass: .write),
        "linli.billing.v1.BillingService/ImportMeterReadings": Rule(permission: .billingConfigure, rateClass: .write),
        "linli.billing.v1.BillingService/GetBillingSettings": Rule(permission: .billingRead, rateClass: .read),
        "linli.billing.v1.BillingService/SetBillingSettings": Rule(permission: .billingConfigure, rateClass: .write),
        "linli.billing.v1.BillingService/RequestRefund": Rule(permission: .billingCashier, rateClass: .write),
        "linli.billing.v1.BillingService/ApproveRefund": Rule(permission: .billingApprove, rateClass: .write),
        "linli.billing.v1.BillingService/RejectRefund": Rule(permission: .billingApprove, rateClass: .write),
        "linli.billing.v1.BillingService/ListRefunds": Rule(permission: .billingRead, rateClass: .read),
        "linli.billing.v1.BillingService/WriteOffBill": Rule(permission: .billingApprove, rateClass: .write),
        "linli.billing.v1.BillingService/IssueInvoices": Rule(permission: .billingCashier, rateClass: .write),
        "linli.billing.v1.BillingService/ListInvoices": Rule(permission: .billingRead, rateClass: .read),
        "linli.billing.v1.BillingService/GetMyBilling": Rule(permission: .billingOwn, rateClass: .read),
        "linli.billing.v1.BillingService/GetMyReceipt": Rule(permission: .billingOwn, rateClass: .read),

        "linli.device.v1.DeviceService/RegisterDevice": Rule(permission: .deviceManage, rateClass: .write),
        "linli.device.v1.DeviceService/RotateDeviceSecret": Rule(permission: .deviceManage, rateClass: .write),
        "linli.device.v1.DeviceService/SetDeviceStatus": Rule(permission: .deviceManage, rateClass: .write),
        "linli.device.v1.DeviceService/ListDevices": Rule(permission: .deviceRead, rateClass: .read),
        "linli.device.v1.DeviceService/ListDeviceEvents": Rule(permission: .deviceRead, rateClass: .read),
        "linli.device.v1.DeviceService/SendCommand": Rule(permission: .deviceCommand, rateClass: .write),
        "linli.device.v1.DeviceService/GetCommand": Rule(permission: .deviceRead, rateClass: .read),
        "linli.device.v1.DeviceService/WatchCommand": Rule(permission: .deviceRead, rateClass: .read),

        "linli.device.v1.AccessService/CreateDoor": Rule(permission: .accessManage, rateClass: .write),
        "linli.device.v1.AccessService/ListDoors": Rule(permission: .accessRead, rateClass: .read),
        "linli.device.v1.AccessService/BindDoorDevice": Rule(permission: .accessManage, rateClass: .write),
        "linli.device.v1.AccessService/IssueCredential": Rule(permission: .accessManage, rateClass: .write),
        "linli.device.v1.AccessService/RevokeCredential": Rule(permission: .accessManage, rateClass: .write),
        "linli.device.v1.AccessService/ListCredentials": Rule(permission: .accessManage, rateClass: .read),
        "linli.device.v1.AccessService/WithdrawFaceConsent": Rule(permission: .accessFace, rateClass: .write),
        "linli.device.v1.AccessService/IssueQRCode": Rule(permission: .accessOwn, rateClass: .write),
        "linli.device.v1.AccessService/OpenDoor": Rule(permission: .accessOpen, rateClass: .write),
        "linli.device.v1.AccessService/ListAccessLog": Rule(permission: .accessRead, rateClass: .read),
        "linli.device.v1.AccessService/ListMyAccessLog": Rule(permission: .accessOwn, rateClass: .read),
        "linli.device.v1.AccessService/GetWhitelistStatus": Rule(permission: .accessRead, rateClass: .read),
        "linli.device.v1.AccessService/GetAccessSettings": Rule(permission: .accessRead, rateClass: .read),
        "linli.device.v1.AccessService/SetAccessSettings": Rule(permission: .accessManage, rateClass: .write),
        "linli.device.v1.AlarmService/ListAlarms": Rule(permission: .alarmRead, rateClass: .read),
        "linli.device.v1.AlarmService/AcknowledgeAlarm": Rule(permission: .alarmHandle, rateClass: .write),
        "linli.device.v1.AlarmService/AssignAlarm": Rule(permission: .alarmHandle, rateClass: .write),
        "linli.device.v1.AlarmService/ClearAlarm": Rule(permission: .alarmHandle, rateClass: .write),
        "linli.device.v1.AlarmService/CreateFirePoint": Rule(permission: .deviceManage, rateClass: .write),
        "linli.device.v1.AlarmService/ListFirePoints": Rule(permission: .alarmRead, rateClass: .read),
        "linli.device.v1.AlarmService/GetFireSettings": Rule(permission: .alarmRead, rateClass: .read),
        "linli.device.v1.AlarmService/SetFireSettings": Rule(permission: .deviceManage, rateClass: .write),
        "linli.device.v1.AlarmService/GetFireReport": Rule(permission: .alarmRead, rateClass: .read),
        "linli.device.v1.MeterService/BindSmartMeter": Rule(permission: .deviceManage, rateClass: .write),
        "linli.device.v1.MeterService/ListSmartMeters": Rule(permission: .deviceRead, rateClass: .read),
        "linli.device.v1.MeterService/TransferMeterReadings": Rule(permission: .meterRecord, rateClass: .write),
        "linli.device.v1.MeterService/TopUpSmartMeter": Rule(permission: .billingCashier, rateClass: .write),
        "linli.device.v1.MeterService/GetMeterCredit": Rule(permission: .billingRead, rateClass: .read),
        "linli.device.v1.AlarmService/SetAlarmRule": Rule(permission: .deviceManage, rateClass: .write),
        "linli.device.v1.AlarmService/ListAlarmRules": Rule(permission: .alarmRead, rateClass: .read),
        "linli.device.v1.AlarmService/GetTelemetry": Rule(permission: .alarmRead, rateClass: .read),
        "linli.device.v1.BroadcastService/CreateZone": Rule(permission: .deviceManage, rateClass: .write),
        "linli.device.v1.BroadcastService/ListZones": Rule(permission: .deviceRead, rateClass: .read),
        "linli.device.v1.BroadcastService/ScheduleBroadcast": Rule(permission: .deviceManage, rateClass: .write),
        "linli.device.v1.BroadcastService/PlayEmergency": Rule(permission: .deviceCommand, rateClass: .write),
        "linli.device.v1.BroadcastService/CancelBroadcastTask": Rule(permission: .deviceManage, rateClass: .write),
        "linli.device.v1.BroadcastService/GetBroadcastTask": Rule(permission: .deviceRead, rateClass: .read),
        "linli.parking.v1.ParkingService/CreateLot": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/UpdateLot": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/ListLots": Rule(permission: .parkingRead, rateClass: .read),
        "linli.parking.v1.ParkingService/AddLane": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/ListLanes": Rule(permission: .parkingRead, rateClass: .read),
        "linli.parking.v1.ParkingService/ConfigureSpace": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/SetFeeRule": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/ListFeeRules": Rule(permission: .parkingRead, rateClass: .read),
        "linli.parking.v1.ParkingService/QuoteFee": Rule(permission: .parkingRead, rateClass: .read),
        "linli.parking.v1.ParkingService/IssuePermit": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/RenewPermit": Rule(permission: .parkingPay, rateClass: .write),
        "linli.parking.v1.ParkingService/RevokePermit": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/ListPermits": Rule(permission: .parkingRead, rateClass: .read),
        "linli.parking.v1.ParkingService/AddListEntry": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/RemoveListEntry": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/ListListEntries": Rule(permission: .parkingRead, rateClass: .read),
        "linli.parking.v1.ParkingService/RegisterVisitorCar": Rule(permission: .parkingVisitor, rateClass: .write),
        "linli.parking.v1.ParkingService/ReserveSpace": Rule(permission: .parkingVisitor, rateClass: .write),
        "linli.parking.v1.ParkingService/CancelReservation": Rule(permission: .parkingVisitor, rateClass: .write),
        "linli.parking.v1.ParkingService/ListReservations": Rule(permission: .parkingVisitor, rateClass: .read),
        "linli.parking.v1.ParkingService/ListSessions": Rule(permission: .parkingRead, rateClass: .read),
        "linli.parking.v1.ParkingService/QuoteSession": Rule(permission: .parkingPay, rateClass: .read),
        "linli.parking.v1.ParkingService/PaySession": Rule(permission: .parkingPay, rateClass: .write),
        "linli.parking.v1.ParkingService/CloseSession": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/CorrectOccupancy": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/CreateMerchant": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/BuyCoupons": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/IssueCoupon": Rule(permission: .parkingManage, rateClass: .write),
        "linli.parking.v1.ParkingService/ListCoupons": Rule(permission: .parkingRead, rateClass: .read),
        "linli.parking.v1.ParkingService/GetParkingReport": Rule(permission: .parkingRead, rateClass: .read),
        "linli.commerce.v1.PointsService/FundPointsBudget": Rule(permission: .pointsManage, rateClass: .write),
        "linli.commerce.v1.PointsService/GetPointsBudget": Rule(permission: .pointsManage, rateClass: .read),
        "linli.commerce.v1.PointsService/GrantPoints": Rule(permission: .pointsManage, rateClass: .write),
        "linli.commerce.v1.PointsService/FreezePoints": Rule(permission: .pointsManage, rateClass: .write),
        "linli.commerce.v1.PointsService/CommitPointsHold": Rule(permission: .pointsManage, rateClass: .write),
        "linli.commerce.v1.PointsService/ReleasePointsHold": Rule(permission: .pointsManage, rateClass: .write),
        "linli.commerce.v1.PointsService/GetPointsBalance": Rule(permission: .pointsOwn, rateClass: .read),
        "linli.commerce.v1.PointsService/CheckPointsCache": Rule(permission: .pointsManage, rateClass: .write),
    ]
}

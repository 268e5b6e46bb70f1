import Foundation
import LinliServer
import LinliTenancy
import Logging
import Testing

@Suite("Shared facts: residency, business day, room label, outbox topics")
struct SharedFactsTests {
    @Test(
        "residency: lives there from the move-in day, not on the move-out day",
        arguments: [
            ("2026-03-09", nil, false),  // the day before moving in
            ("2026-03-10", nil, true),  // the move-in day
            ("2026-03-11", nil, true),
            ("2026-03-10", "2026-03-20", true),
            ("2026-03-19", "2026-03-20", true),  // the last night
            ("2026-03-20", "2026-03-20", false),  // the move-out day
            ("2026-03-21", "2026-03-20", false),
        ] as [(String, String?, Bool)])
    func residencyBoundaries(day: String, moveOut: String?, lives: Bool) {
        #expect(Residency.livesIn(moveIn: "2026-03-10", moveOut: moveOut, on: day) == lives)
    }

    @Test("business day: Ürümqi and Shanghai see different days at the same instant, and days start at their own midnight")
    func businessDayAcrossZones() throws {
        let shanghai = BusinessDay(timeZone: try #require(TimeZone(identifier: "Asia/Shanghai")))
        let urumqi = BusinessDay(timeZone: try #require(TimeZone(identifier: "Asia/Urumqi")))
        // 2026-02-28 17:30 UTC: 01:30 on 1 March in Shanghai (UTC+8), 23:30 on 28 February in Ürümqi (UTC+6).
        let instant = Date(timeIntervalSince1970: 1_772_299_800)
        #expect(shanghai.today(now: instant) == "2026-03-01")
        #expect(urumqi.today(now: instant) == "2026-02-28")
        #expect(shanghai.start(of: "2026-03-01") == Date(timeIntervalSince1970: 1_772_294_400))  // 16:00 UTC the day before
        #expect(urumqi.start(of: "2026-03-01") == Date(timeIntervalSince1970: 1_772_301_600))  // 18:00 UTC the day before
        #expect(urumqi.adding(1, to: "2026-02-28") == "2026-03-01")
        #expect(shanghai.adding(-365, to: "2026-03-01") == "2025-03-01")
        #expect(shanghai.start(of: "March") == nil)
    }

    @Test("room label: building, unit, number")
    func roomLabel() {
        #expect(RoomLabel.make(building: "3栋", unit: "2单元", number: "1201") == "3栋2单元1201")
    }

    @Test("outbox: every topic has exactly one consumer that runs, every consumer has a topic")
    func outboxTopicsHaveConsumers() {
        let running = LinliApplication.outboxConsumers(redis: nil, logger: Logger(label: "test")).map(\.name)
        #expect(Set(running).count == running.count, "a consumer is registered twice")
        for topic in Topic.all {
            #expect(running.contains(topic.consumer), "topic \(topic.name) has no running consumer")
        }
        for consumer in OutboxConsumerName.allCases {
            #expect(running.contains(consumer), "consumer \(consumer.rawValue) is declared but never runs")
            #expect(!Topic.names(of: consumer).isEmpty, "consumer \(consumer.rawValue) has no topic")
        }
        #expect(Set(Topic.all.map(\.name)).count == Topic.all.count, "a topic is declared twice")
    }
}

"""Drives a running Linli server with Python grpcio, as a partner app would.

Deploy/test starts the server on the test stack with the demo tenant seeded and passes
LINLI_TEST_TARGET and LINLI_TEST_CA.
"""
import os
import sys
import time
import unittest
import uuid

import grpc

sys.path.insert(0, os.path.dirname(__file__))
from linli_client import Linli, commerce_pb2, identity_pb2, notices_pb2, shop_walkthrough  # noqa: E402

TARGET = os.environ.get("LINLI_TEST_TARGET", "127.0.0.1:8443")
CA = os.environ["LINLI_TEST_CA"]
PASSWORD = os.environ.get("LINLI_TEST_DEMO_PASSWORD", "linli-demo-2026")


class GrpcioPartnerTest(unittest.TestCase):
    def setUp(self):
        self.client = Linli(TARGET, CA)

    def tearDown(self):
        self.client.close()

    def test_health_is_serving(self):
        check = self.client.channel.unary_unary("/grpc.health.v1.Health/Check")
        # An empty HealthCheckRequest; the reply's field 1 is SERVING (1) once the storage
        # probe has seen PostgreSQL and Redis answer (within a second of start).
        for _ in range(50):
            if check(b"") == b"\x08\x01":
                break
            time.sleep(0.1)
        self.assertEqual(check(b""), b"\x08\x01")

    def test_shop_walkthrough_from_browsing_to_a_reviewed_order_paid_partly_with_points(self):
        manager = Linli(TARGET, CA)
        manager.login("demo", "manager", PASSWORD)
        manager.shop.SetCommerceSettings(commerce_pb2.SetCommerceSettingsRequest(
            request_id=str(uuid.uuid4()), settings=commerce_pb2.CommerceSettings(
                unpaid_minutes=30, confirm_days=7, review_days=7, fen_per_point=1, max_points_percent=30,
                default_commission_bp=500)), metadata=manager.metadata)
        manager.close()
        lines = []
        order, balance = shop_walkthrough(TARGET, CA, "demo", PASSWORD, say=lines.append)
        self.assertEqual(order.state, commerce_pb2.ORDER_STATE_RECEIVED, lines)
        # The property's coupon (满50减5) first, then 300 points on what is left.
        self.assertEqual((order.goods_fen, order.coupon_fen, order.points, order.pay_fen), (10990, 500, 300, 10190), lines)
        self.assertTrue(any(line.startswith("group buy 水蜜桃三人团") for line in lines), lines)
        self.assertTrue(any(line.startswith("cart: 1 item(s)") for line in lines), lines)
        self.assertTrue(order.lines[0].reviewed)
        self.assertEqual(balance.available, 700)
        self.assertEqual([e.actor for e in order.events], ["resident", "channel", "merchant", "resident"])

    def test_unauthenticated_call_is_refused(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.client.identity.WhoAmI(identity_pb2.WhoAmIRequest())
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_wrong_password_is_unauthenticated(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.client.login("demo", "resident1", "not-the-password")
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_resident_feed_pins_first_and_marks_read(self):
        principal = self.client.login("demo", "resident1", PASSWORD)
        community = principal.community_ids[0]
        page = self.client.notices.ListNotices(
            notices_pb2.ListNoticesRequest(community_id=community), metadata=self.client.metadata)
        self.assertGreaterEqual(len(page.notices), 1)
        self.assertTrue(page.notices[0].pinned)
        target = page.notices[0].id
        self.client.notices.MarkNoticeRead(
            notices_pb2.MarkNoticeReadRequest(request_id=str(uuid.uuid4()), notice_id=target),
            metadata=self.client.metadata)
        again = self.client.notices.ListNotices(
            notices_pb2.ListNoticesRequest(community_id=community), metadata=self.client.metadata)
        self.assertTrue(next(n for n in again.notices if n.id == target).read)

    def test_publish_is_idempotent_and_names_bad_fields(self):
        principal = self.client.login("demo", "manager", PASSWORD)
        request = notices_pb2.PublishNoticeRequest(
            request_id=str(uuid.uuid4()), community_id=principal.community_ids[0],
            title="电梯年检", body="周五 2 号楼电梯年检。", category=notices_pb2.NOTICE_CATEGORY_MAINTENANCE)
        first = self.client.notices.PublishNotice(request, metadata=self.client.metadata)
        retry = self.client.notices.PublishNotice(request, metadata=self.client.metadata)
        self.assertEqual(first.notice.id, retry.notice.id)

        request.title = "另一个标题"
        with self.assertRaises(grpc.RpcError) as caught:
            self.client.notices.PublishNotice(request, metadata=self.client.metadata)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)

        request.request_id = str(uuid.uuid4())
        request.title = ""
        with self.assertRaises(grpc.RpcError) as caught:
            self.client.notices.PublishNotice(request, metadata=self.client.metadata)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("title", caught.exception.details())

    def test_client_streamed_import_reports_bad_lines_then_commits(self):
        principal = self.client.login("demo", "manager", PASSWORD)
        community = principal.community_ids[0]
        suffix = uuid.uuid4().hex[:6]
        bad = ["building", f"py{suffix}", "", f"py{suffix}", "x" * 41]
        report = self.client.import_csv(community, "buildings", bad, str(uuid.uuid4()), chunk=2)
        self.assertFalse(report.committed)
        self.assertEqual([(e.line, e.column) for e in report.errors], [(4, "building"), (5, "building")])
        good = ["building", f"py{suffix}-A", f"py{suffix}-B"]
        report = self.client.import_csv(community, "buildings", good, str(uuid.uuid4()), chunk=1)
        self.assertTrue(report.committed)
        self.assertEqual(report.created, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""A small Python client for Linli, on stubs generated from Protos/ with grpcio-tools.

Used by test_grpcio.py and by hand:
    python Tests/python/linli_client.py --ca .data/tls/ca.crt notices \
        --tenant demo --username resident1 --password linli-demo-2026
    python Tests/python/linli_client.py --ca .data/tls/ca.crt import --kind rooms --file rooms.csv \
        --tenant demo --username manager --password linli-demo-2026
"""
import argparse
import importlib
import os
import pathlib
import sys

import grpc

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTOS = ROOT / "Protos"
GENERATED = ROOT / ".data" / "pygen"


def generate_stubs():
    """Compiles the linli/ protos into .data/pygen and puts them on sys.path.

    grpc/health/v1 is left out: a generated `grpc` package would shadow grpcio itself.
    """
    from grpc_tools import protoc
    import grpc_tools

    GENERATED.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "linli").rglob("*.proto"))
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{PROTOS}", f"-I{well_known}", f"--python_out={GENERATED}",
            f"--grpc_python_out={GENERATED}", *protos]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on Protos/")
    for folder in [p for p in GENERATED.rglob("*") if p.is_dir()]:
        (folder / "__init__.py").touch()
    if str(GENERATED) not in sys.path:
        sys.path.insert(0, str(GENERATED))


generate_stubs()
identity_pb2 = importlib.import_module("linli.identity.v1.identity_pb2")
identity_grpc = importlib.import_module("linli.identity.v1.identity_pb2_grpc")
notices_pb2 = importlib.import_module("linli.property.v1.notices_pb2")
notices_grpc = importlib.import_module("linli.property.v1.notices_pb2_grpc")
base_data_pb2 = importlib.import_module("linli.property.v1.base_data_pb2")
base_data_grpc = importlib.import_module("linli.property.v1.base_data_pb2_grpc")
commerce_pb2 = importlib.import_module("linli.commerce.v1.commerce_pb2")
commerce_grpc = importlib.import_module("linli.commerce.v1.commerce_pb2_grpc")
points_pb2 = importlib.import_module("linli.commerce.v1.points_pb2")
points_grpc = importlib.import_module("linli.commerce.v1.points_pb2_grpc")
group_buys_pb2 = importlib.import_module("linli.commerce.v1.group_buys_pb2")
group_buys_grpc = importlib.import_module("linli.commerce.v1.group_buys_pb2_grpc")


class Linli:
    """A TLS channel to a Linli server plus the session of one user."""

    def __init__(self, target, ca_path):
        with open(ca_path, "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        self.channel = grpc.secure_channel(target, credentials)
        self.identity = identity_grpc.IdentityServiceStub(self.channel)
        self.notices = notices_grpc.NoticeServiceStub(self.channel)
        self.base_data = base_data_grpc.BaseDataServiceStub(self.channel)
        self.shop = commerce_grpc.MerchantServiceStub(self.channel)
        self.orders = commerce_grpc.OrderServiceStub(self.channel)
        self.points = points_grpc.PointsServiceStub(self.channel)
        self.coupons = commerce_grpc.CouponServiceStub(self.channel)
        self.group_buys = group_buys_grpc.GroupBuyServiceStub(self.channel)
        self.metadata = ()

    def login(self, tenant, username, password):
        response = self.identity.Login(identity_pb2.LoginRequest(
            tenant_slug=tenant, username=username, password=password))
        self.metadata = (("authorization", "Bearer " + response.session_token),)
        return response.principal

    def import_csv(self, community, kind, lines, request_id, chunk=500):
        """Streams CSV lines (header first) to ImportBaseData in chunks; returns the report."""
        def messages():
            yield base_data_pb2.ImportBaseDataRequest(
                request_id=request_id, community_id=community,
                kind=base_data_pb2.ImportKind.Value("IMPORT_KIND_" + kind.upper()))
            for start in range(0, len(lines), chunk):
                yield base_data_pb2.ImportBaseDataRequest(lines=lines[start:start + chunk])
        return self.base_data.ImportBaseData(messages(), metadata=self.metadata)

    def close(self):
        self.channel.close()


def shop_walkthrough(target, ca, tenant, password, say=print):
    """A resident from browsing to a reviewed order paid partly with points (the demo shop).

    The resident browses, sees the shop's group buy, puts the 12-pack in the cart, claims the
    property's coupon, sees the points an order may take, orders from the cart with the coupon
    and 300 points, pays the rest through the simulated channel, the merchant ships, the resident
    confirms and reviews. Returns the order as it ends. Run again on the same demo, the coupon
    (one per person) is used already and the order goes without it."""
    import time
    import uuid

    def rid():
        return str(uuid.uuid4())
    resident, merchant = Linli(target, ca), Linli(target, ca)
    principal = resident.login(tenant, "resident1", password)
    merchant.login(tenant, "merchant", password)
    community = principal.community_ids[0]
    goods = resident.shop.ListGoods(commerce_pb2.ListGoodsRequest(community_id=community), metadata=resident.metadata).goods
    peach = goods[0]
    sku = max(peach.skus, key=lambda s: s.price_fen)
    say(f"browse: {peach.merchant_name} {peach.name}, from {peach.min_price_fen / 100:.2f}元; taking {sku.spec} at {sku.price_fen / 100:.2f}元")
    deals = resident.group_buys.ListGroupBuyDeals(group_buys_pb2.ListGroupBuyDealsRequest(community_id=community), metadata=resident.metadata)
    for campaign in deals.campaigns:
        for deal in (d for d in deals.deals if d.campaign_id == campaign.id):
            say(f"group buy {campaign.title}: {deal.goods_name} {deal.spec} {deal.group_price_fen / 100:.2f}元 instead of "
                f"{deal.price_fen / 100:.2f}元 when {campaign.group_size} join within {campaign.form_hours} h "
                f"({len(deal.forming)} groups forming)")
    cart = resident.orders.SetCartItem(commerce_pb2.SetCartItemRequest(request_id=rid(), community_id=community, sku_id=sku.id, quantity=1),
                                       metadata=resident.metadata)
    say(f"cart: {sum(len(s.items) for s in cart.shops)} item(s), {sum(s.goods_fen for s in cart.shops) / 100:.2f}元")
    coupon_id = ""
    for template in resident.coupons.ListCouponTemplates(commerce_pb2.ListCouponTemplatesRequest(community_id=community),
                                                         metadata=resident.metadata).templates:
        if template.scope != commerce_pb2.COUPON_SCOPE_SHOP:
            continue  # the fee and parking coupons are for the cashier and the lane
        try:
            coupon = resident.coupons.ClaimCoupon(commerce_pb2.ClaimCouponRequest(request_id=rid(), template_id=template.id),
                                                  metadata=resident.metadata)
            coupon_id = coupon.id
            say(f"coupon: claimed {template.name}")
            break
        except grpc.RpcError as e:
            say(f"coupon: {template.name} not claimed ({e.details()})")
    line = commerce_pb2.OrderLineDraft(sku_id=sku.id, quantity=1)
    quote = resident.orders.QuoteOrder(commerce_pb2.QuoteOrderRequest(community_id=community, lines=[line], points=300, coupon_id=coupon_id),
                                       metadata=resident.metadata)
    say(f"quote: goods {quote.goods_fen / 100:.2f}元, coupon {quote.coupon_fen / 100:.2f}元 off, 300 points = "
        f"{quote.points_value_fen / 100:.2f}元 off, pay {quote.pay_fen / 100:.2f}元 "
        f"(at most {quote.max_points} points; {quote.points_available} available)")
    order = resident.orders.PlaceOrder(commerce_pb2.PlaceOrderRequest(request_id=rid(), community_id=community, lines=[line], points=300,
                                                                      coupon_id=coupon_id, from_cart=True),
                                       metadata=resident.metadata)
    say(f"order {order.order_no}: to {order.address}, pay by {order.pay_deadline.ToJsonString()}")
    intent = resident.orders.PayOrder(commerce_pb2.PayOrderRequest(request_id=rid(), order_id=order.id, channel="sim"),
                                      metadata=resident.metadata)
    resident.orders.SimulateChannelPayment(commerce_pb2.SimulateChannelPaymentRequest(request_id=rid(), intent_id=intent.id),
                                           metadata=resident.metadata)
    for _ in range(100):
        order = resident.orders.GetOrder(commerce_pb2.GetOrderRequest(order_id=order.id), metadata=resident.metadata)
        if order.state == commerce_pb2.ORDER_STATE_PAID:
            break
        time.sleep(0.1)
    say(f"paid {intent.amount_fen / 100:.2f}元 through the channel ({commerce_pb2.OrderState.Name(order.state)})")
    merchant.orders.ShipOrder(commerce_pb2.ShipOrderRequest(request_id=rid(), order_id=order.id, tracking="送货上门"), metadata=merchant.metadata)
    order = resident.orders.ConfirmReceipt(commerce_pb2.ConfirmReceiptRequest(request_id=rid(), order_id=order.id), metadata=resident.metadata)
    review = resident.orders.ReviewOrderLine(commerce_pb2.ReviewOrderLineRequest(
        request_id=rid(), order_id=order.id, line_id=order.lines[0].id, score=5, text="很甜，送得快"), metadata=resident.metadata)
    merchant.orders.ReplyToReview(commerce_pb2.ReplyToReviewRequest(request_id=rid(), review_id=review.id, text="谢谢惠顾"),
                                  metadata=merchant.metadata)
    balance = resident.points.GetPointsBalance(points_pb2.GetPointsBalanceRequest(community_id=community), metadata=resident.metadata)
    order = resident.orders.GetOrder(commerce_pb2.GetOrderRequest(order_id=order.id), metadata=resident.metadata)
    say(f"received and reviewed ({review.score}★, the shop replied); {commerce_pb2.OrderState.Name(order.state)}; "
        f"{balance.available} points left")
    for event in order.events:
        say(f"  {event.at.ToJsonString()}  {commerce_pb2.OrderState.Name(getattr(event, 'from'))} → "
            f"{commerce_pb2.OrderState.Name(event.to)} by {event.actor} {event.note}")
    resident.close()
    merchant.close()
    return order, balance


def main():
    parser = argparse.ArgumentParser(description="Call a Linli server.")
    parser.add_argument("--target", default="127.0.0.1:8443")
    parser.add_argument("--ca", default=str(ROOT / ".data" / "tls" / "ca.crt"))
    sub = parser.add_subparsers(dest="command", required=True)
    feed = sub.add_parser("notices", help="log in and print the first page of notices")
    feed.add_argument("--tenant", default="demo")
    feed.add_argument("--username", required=True)
    feed.add_argument("--password", default=os.environ.get("LINLI_PASSWORD", ""))
    load = sub.add_parser("import", help="import buildings, rooms or residents from a CSV file (header first)")
    load.add_argument("--kind", choices=["buildings", "rooms", "residents"], required=True)
    load.add_argument("--file", required=True)
    load.add_argument("--tenant", default="demo")
    load.add_argument("--username", required=True)
    load.add_argument("--password", default=os.environ.get("LINLI_PASSWORD", ""))
    shop = sub.add_parser("shop", help="resident1 browses the demo shop, orders from the cart with a coupon and points, pays, "
                                       "gets it shipped, reviews")
    shop.add_argument("--tenant", default="demo")
    shop.add_argument("--password", default=os.environ.get("LINLI_PASSWORD", ""))
    args = parser.parse_args()

    if args.command == "shop":
        shop_walkthrough(args.target, args.ca, args.tenant, args.password)
        sys.exit(0)

    client = Linli(args.target, args.ca)
    principal = client.login(args.tenant, args.username, args.password)
    print(f"logged in as {principal.display_name} ({principal.user_id})")
    if args.command == "import":
        import uuid
        with open(args.file, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
        report = client.import_csv(principal.community_ids[0], args.kind, lines, str(uuid.uuid4()))
        print(f"{'committed' if report.committed else 'nothing written'}: {report.rows} rows, {report.created} created, "
              f"{report.error_count} errors")
        for error in report.errors:
            print(f"  line {error.line} {error.column or '-'}: {error.message}")
        client.close()
        sys.exit(0 if report.committed else 1)
    for community in principal.community_ids:
        page = client.notices.ListNotices(notices_pb2.ListNoticesRequest(community_id=community),
                                          metadata=client.metadata)
        for notice in page.notices:
            mark = "📌" if notice.pinned else "  "
            print(f"{mark} {notice.published_at.ToJsonString()}  {notice.title}  {'read' if notice.read else 'unread'}")
    client.close()


if __name__ == "__main__":
    main()

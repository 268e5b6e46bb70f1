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


class Linli:
    """A TLS channel to a Linli server plus the session of one user."""

    def __init__(self, target, ca_path):
        with open(ca_path, "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        self.channel = grpc.secure_channel(target, credentials)
        self.identity = identity_grpc.IdentityServiceStub(self.channel)
        self.notices = notices_grpc.NoticeServiceStub(self.channel)
        self.base_data = base_data_grpc.BaseDataServiceStub(self.channel)
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
    args = parser.parse_args()

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

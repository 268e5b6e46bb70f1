"""Hostile input against every method of every service, found through the descriptors.

Walks every service in Protos/linli (and grpc.health.v1.Health) and sends, signed in with
each role and without credentials, a plausible request and then one request per field and
edge value: empty, huge, negative, INT32/INT64 min and max, extreme timestamps, bad UUIDs,
NUL and control characters, bidirectional overrides, oversize repeated fields, unknown enum
values, forged page tokens. A new RPC or field is covered without anyone adding it here.

It fails on INTERNAL or UNKNOWN, on a call that overruns its deadline, on the server going
away, and on a stored value outside the declared limits (control characters in text,
timestamps and dates outside 2000–2100). Deploy/test runs it against a server started with
rate limits raised, so that the limiter does not hide the handlers.
"""
import base64
import concurrent.futures
import os
import random
import socket
import ssl
import struct
import subprocess
import sys
import time
import unittest
import uuid

import grpc
from google.protobuf import descriptor, message_factory

sys.path.insert(0, os.path.dirname(__file__))
import linli_client  # noqa: E402
from linli_client import Linli  # noqa: E402

TARGET = os.environ.get("LINLI_TEST_TARGET", "127.0.0.1:8443")
CA = os.environ["LINLI_TEST_CA"]
PASSWORD = os.environ.get("LINLI_TEST_DEMO_PASSWORD", "linli-demo-2026")
DEADLINE = 10.0
ROLES = [("demo", "manager"), ("demo", "cashier"), ("demo", "technician"), ("demo", "guard"),
         ("demo", "merchant"), ("demo", "resident1"), ("", "operator"), (None, None)]
# Every proto under Protos/linli: a new service is fuzzed without anyone listing it here.
PROTOS = linli_client.PROTOS / "linli"
MODULES = sorted(str(p.relative_to(PROTOS).with_suffix("")).replace(os.sep, ".") for p in PROTOS.rglob("*.proto"))

INT32 = [-1, 6, 32767, 32768, 2**31 - 1, -2**31, 10**9]
INT64 = [-1, 2**63 - 1, -2**63, 10**9, 10**15]
SECONDS = [-2**63, 2**63 - 1, -10**13, 10**13, 0, -62135596800, 253402300799]
FORGED_TOKENS = [base64.b64encode(f"{-2**63}|{uuid.uuid4()}".encode()).decode(),
                 base64.b64encode(f"{2**63 - 1}|{uuid.uuid4()}".encode()).decode(),
                 "AAAA.AAAAAAAAAAAAAAAAAAAAAA", "not a token", "." * 199]
TEXTS = ["", "\x00", "a\x00b", "\x07\x1b[31m\x7f", "evil\u202egpj.exe", "line\nbreak", "' OR 1=1 --", "%_\\",
         "not-a-uuid", "00000000-0000-0000-0000-000000000000", "😀" * 60, "x" * 10_000, "y" * 900_000]


def is_repeated(field):
    flag = getattr(field, "is_repeated", None)
    return flag if flag is not None else field.label == descriptor.FieldDescriptor.LABEL_REPEATED


def load_services():
    services = []
    for name in MODULES:
        module = linli_client.importlib.import_module(f"linli.{name}_pb2")
        services.extend(module.DESCRIPTOR.services_by_name.values())
    return services


class Fuzzer:
    def __init__(self, client, community):
        self.client = client
        self.community = community
        self.calls = 0
        self.goaways = 0
        self.fields = set()
        self.failures = []

    def plausible(self, message, ids=None):
        """Fills what a real caller would: ids (real ones of the demo community where `ids`
        has them), the demo community, a fresh request id."""
        for field in message.DESCRIPTOR.fields:
            if field.type == field.TYPE_STRING and not is_repeated(field):
                if field.name == "request_id":
                    setattr(message, field.name, str(uuid.uuid4()))
                elif field.name == "community_id":
                    setattr(message, field.name, self.community)
                elif ids and field.name in ids:
                    setattr(message, field.name, ids[field.name])
                elif field.name.endswith("_id"):
                    setattr(message, field.name, str(uuid.uuid4()))
        return message

    def foreign_calls(self, services, metadata, ids):
        """A manager of another community calls every method with this community's ids:
        anything but a refusal is a leak. Returns the leaks."""
        refusals = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.FAILED_PRECONDITION)
        leaks = []
        for service in services:
            for method in service.methods:
                message = self.plausible(message_factory.GetMessageClass(method.input_type)(), ids)
                names = {f.name for f in message.DESCRIPTOR.fields}
                if not ("community_id" in names or names & set(ids)):
                    continue  # nothing of the other community in this request
                path = f"/{service.full_name}/{method.name}"
                self.calls += 1
                try:
                    if method.client_streaming:
                        stub = self.client.channel.stream_unary(path, request_serializer=type(message).SerializeToString,
                                                               response_deserializer=bytes)
                        stub(iter([message]), timeout=DEADLINE, metadata=metadata)
                    elif method.server_streaming:
                        continue
                    else:
                        stub = self.client.channel.unary_unary(path, request_serializer=type(message).SerializeToString,
                                                              response_deserializer=bytes)
                        stub(message, timeout=DEADLINE, metadata=metadata)
                    leaks.append(f"{path} answered OK")
                except grpc.RpcError as error:
                    if error.code() not in refusals:
                        leaks.append(f"{path} → {error.code().name} {error.details()!r}")
        return leaks

    def variants(self, message_class):
        """(label, message) pairs: the plausible message, then one edge value per field."""
        base = self.plausible(message_class())
        yield "plausible", base
        for label, mutate in self.mutations(base.DESCRIPTOR, depth=0):
            message = message_class()
            message.CopyFrom(base)
            try:
                mutate(message)
            except (ValueError, TypeError, OverflowError):
                continue  # the Python runtime itself refuses the value; no wire message to send
            yield label, message

    def mutations(self, desc, depth, path=""):
        for field in desc.fields:
            name = path + field.name
            self.fields.add(f"{desc.full_name}.{field.name}")
            if is_repeated(field):
                yield from self.repeated_mutations(field, name)
                continue
            if field.type == field.TYPE_MESSAGE:
                if field.message_type.full_name == "google.protobuf.Timestamp":
                    for seconds in SECONDS:
                        yield f"{name}={seconds}s", self.setter(field, lambda m, f=field, s=seconds: getattr(m, f.name).__setattr__("seconds", s))
                    yield f"{name}.nanos=-1", self.setter(field, lambda m, f=field: getattr(m, f.name).__setattr__("nanos", -1))
                elif depth < 3:
                    for label, inner in self.mutations(field.message_type, depth + 1, name + "."):
                        yield label, self.setter(field, lambda m, f=field, g=inner: g(getattr(m, f.name)))
            elif field.type == field.TYPE_STRING:
                values = FORGED_TOKENS if field.name == "page_token" else TEXTS
                for value in values:
                    yield f"{name}={value[:12]!r}…{len(value)}", self.setter(field, lambda m, f=field, v=value: setattr(m, f.name, v))
            elif field.type in (field.TYPE_INT32, field.TYPE_SINT32, field.TYPE_SFIXED32):
                for value in INT32:
                    yield f"{name}={value}", self.setter(field, lambda m, f=field, v=value: setattr(m, f.name, v))
            elif field.type in (field.TYPE_INT64, field.TYPE_SINT64, field.TYPE_SFIXED64):
                for value in INT64:
                    yield f"{name}={value}", self.setter(field, lambda m, f=field, v=value: setattr(m, f.name, v))
            elif field.type == field.TYPE_ENUM:
                for value in [v.number for v in field.enum_type.values] + [99, -1]:
                    yield f"{name}={value}", self.setter(field, lambda m, f=field, v=value: setattr(m, f.name, v))
            elif field.type == field.TYPE_BOOL:
                yield f"{name}=true", self.setter(field, lambda m, f=field: setattr(m, f.name, True))

    def repeated_mutations(self, field, name):
        many = 10_000
        if field.type == field.TYPE_STRING:
            entries = [[str(uuid.uuid4()) for _ in range(many)], ["ok", "bad\x00"], [self.community, self.community], [""]]
        elif field.type in (field.TYPE_INT32, field.TYPE_INT64):
            entries = [[1] * many, [-2**31], [2**31 - 1]]
        elif field.type == field.TYPE_ENUM:
            entries = [[99], [1] * many]
        elif field.type == field.TYPE_MESSAGE:
            entries = [None]
        else:
            entries = []
        if field.type == field.TYPE_MESSAGE and field.message_type.full_name != "google.protobuf.Timestamp":
            # One entry carrying each edge value of the entry's own fields.
            for label, inner in self.mutations(field.message_type, 2, name + "[0]."):
                yield label, self.setter(field, lambda m, f=field, g=inner: g(getattr(m, f.name).add()))
        for values in entries:
            if values is None:
                yield f"{name}[{many} empty]", self.setter(field, lambda m, f=field: [getattr(m, f.name).add() for _ in range(many)])
            else:
                yield f"{name}[{len(values)}]", self.setter(field, lambda m, f=field, v=values: getattr(m, f.name).extend(v))

    @staticmethod
    def setter(field, apply):
        return apply

    def call(self, service, method, message, metadata, label):
        # The server answers a flood of oversize requests on one connection with GOAWAY
        # (ENHANCE_YOUR_CALM, HTTP/2 abuse protection) and closes it; the calls in flight on it
        # get UNAVAILABLE, which the contract says to retry: up to four retries with a back-off.
        # A client still writing a large body when the socket closes sees the same event as a
        # TCP reset ("Stream removed … Connection reset by peer", or "Broken pipe" when it is
        # the client's write that finds the socket closed) instead of the GOAWAY. A
        # crashed server refuses every retry, so the last attempt still records it.
        for attempt in range(5):
            goaway = self.attempt(service, method, message, metadata, label, last=attempt == 4)
            if not goaway:
                return
            self.goaways += 1
            time.sleep(0.2 * (attempt + 1))

    def attempt(self, service, method, message, metadata, label, last):
        path = f"/{service.full_name}/{method.name}"
        serialize = type(message).SerializeToString
        self.calls += 1
        started = time.monotonic()
        try:
            if method.client_streaming:
                stub = self.client.channel.stream_unary(path, request_serializer=serialize, response_deserializer=bytes)
                stub(iter([message, message]), timeout=DEADLINE, metadata=metadata)
            elif method.server_streaming:
                stub = self.client.channel.unary_stream(path, request_serializer=serialize, response_deserializer=bytes)
                for _ in stub(message, timeout=2.0, metadata=metadata):
                    break
            else:
                stub = self.client.channel.unary_unary(path, request_serializer=serialize, response_deserializer=bytes)
                stub(message, timeout=DEADLINE, metadata=metadata)
        except grpc.RpcError as error:
            code = error.code()
            elapsed = time.monotonic() - started
            details = error.details() or ""
            connection_lost = any(sign in details for sign in ("GOAWAY", "Connection reset by peer", "Broken pipe"))
            if code == grpc.StatusCode.UNAVAILABLE and connection_lost and not last:
                return True
            bad = code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE)
            bad = bad or (code == grpc.StatusCode.DEADLINE_EXCEEDED and not method.server_streaming)
            if bad:
                self.failures.append(f"{path} [{label}] → {code.name} {error.details()!r} after {elapsed:.1f}s")
        return False


class FuzzTest(unittest.TestCase):
    def test_every_method_survives_hostile_input(self):
        client = Linli(TARGET, CA)
        sessions = []
        community = None
        for tenant, username in ROLES:
            if username is None:
                sessions.append(("anonymous", ()))
                continue
            principal = client.login(tenant, username, PASSWORD)
            if community is None and principal.community_ids:
                community = principal.community_ids[0]
            sessions.append((username, client.metadata))
        fuzzer = Fuzzer(client, community)
        services = load_services()
        # Logout ends the session it is called with: last, so every other method meets live sessions.
        methods = sorted(((s, m) for s in services for m in s.methods), key=lambda sm: sm[1].name == "Logout")
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            for service, method in methods:
                message_class = message_factory.GetMessageClass(method.input_type)
                jobs = []
                for role, metadata in sessions:
                    for label, message in fuzzer.variants(message_class):
                        jobs.append(pool.submit(fuzzer.call, service, method, message, metadata, f"{role}: {label}"))
                for job in jobs:
                    job.result()
                self.assertTrue(self.serving(client), f"server stopped answering after {service.name}/{method.name}")
        health = ["Check"]
        for text in TEXTS:
            check = client.channel.unary_unary("/grpc.health.v1.Health/Check")
            try:
                check(b"\x0a" + encode_varint(len(text.encode())) + text.encode(), timeout=DEADLINE)
            except grpc.RpcError as error:
                if error.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED):
                    fuzzer.failures.append(f"Health/Check [{text[:12]!r}] → {error.code().name}")
            fuzzer.calls += 1
        leaks = fuzzer.foreign_calls(services, self.foreign_manager(client, community), self.demo_ids(client, sessions))
        elapsed = time.monotonic() - started
        print(f"fuzz: cross-community probe: {len(leaks)} leaks", file=sys.stderr)
        for leak in leaks:
            print("  " + leak, file=sys.stderr)
        print(f"fuzz: {fuzzer.calls} calls, {len(methods) + len(health)} methods, {len(fuzzer.fields)} fields, "
              f"{len(sessions)} roles, {elapsed:.0f} s; retried after the connection closed (GOAWAY or reset): {fuzzer.goaways}; failures: {len(fuzzer.failures)}", file=sys.stderr)
        for failure in fuzzer.failures[:40]:
            print("  " + failure, file=sys.stderr)
        self.assertEqual(fuzzer.failures, [])
        self.assertEqual(leaks, [])
        self.assertEqual(stored_out_of_limits(), [])
        client.close()

    @staticmethod
    def demo_ids(client, sessions):
        """Real ids of the demo community: its notices, a resident, a building."""
        # Fresh sessions: the fuzz itself called Logout with the earlier ones.
        notices = linli_client.notices_pb2
        resident = client.login("demo", "resident1", PASSWORD)
        client.login("demo", "manager", PASSWORD)
        feed = client.notices.ListNotices(notices.ListNoticesRequest(community_id=resident.community_ids[0]),
                                          metadata=client.metadata)
        parking = linli_client.importlib.import_module("linli.parking.v1.parking_pb2")
        lots = client.channel.unary_unary("/linli.parking.v1.ParkingService/ListLots",
                                          request_serializer=parking.ListLotsRequest.SerializeToString,
                                          response_deserializer=parking.ListLotsResponse.FromString)(
            parking.ListLotsRequest(community_id=resident.community_ids[0]), metadata=client.metadata, timeout=DEADLINE)
        return {"notice_id": feed.notices[0].id, "user_id": resident.user_id, "building_id": resident.building_ids[0],
                "lot_id": lots.lots[0].id}

    @staticmethod
    def foreign_manager(client, community):
        """A second community of the demo tenant and its own manager, signed in."""
        platform = linli_client.importlib.import_module("linli.platform.v1.platform_pb2")
        platform_grpc = linli_client.importlib.import_module("linli.platform.v1.platform_pb2_grpc")
        client.login("", "operator", PASSWORD)
        tenants = platform_grpc.PlatformServiceStub(client.channel)
        demo = [t for t in tenants.ListTenants(platform.ListTenantsRequest(), metadata=client.metadata).tenants if t.slug == "demo"][0]
        second = tenants.CreateCommunity(platform.CreateCommunityRequest(
            request_id=str(uuid.uuid4()), tenant_id=demo.id, name=f"隔壁小区 {uuid.uuid4().hex[:6]}", building_names=["A座"]),
            metadata=client.metadata).community
        username = f"mgr_{uuid.uuid4().hex[:8]}"
        subprocess.run([os.environ["LINLI_TEST_BINARY"], "user", "create", "--tenant", "demo", "--username", username,
                        "--name", "隔壁经理", "--role", "manager", "--community", second.id],
                       env=dict(os.environ, LINLI_NEW_PASSWORD=PASSWORD), check=True, capture_output=True, timeout=60)
        client.login("demo", username, PASSWORD)
        return client.metadata

    @staticmethod
    def serving(client):
        check = client.channel.unary_unary("/grpc.health.v1.Health/Check")
        for _ in range(20):
            try:
                return check(b"", timeout=2.0) == b"\x08\x01"
            except grpc.RpcError:
                time.sleep(0.5)
        return False


DEVICE_PORT = int(os.environ.get("LINLI_TEST_DEVICE_PORT", "8444"))


def device_connection():
    """A TLS connection to the device gateway that has read its Challenge frame."""
    context = ssl.create_default_context(cafile=CA)
    raw = socket.create_connection(("127.0.0.1", DEVICE_PORT), timeout=10)
    conn = context.wrap_socket(raw, server_hostname="127.0.0.1")
    frame = read_frame(conn)
    assert frame is not None and frame[:1] == b"\x0a", "the gateway's first frame is a Challenge"
    return conn


def read_frame(conn):
    head = b""
    while len(head) < 4:
        chunk = conn.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (length,) = struct.unpack(">I", head)
    body = b""
    while len(body) < length:
        chunk = conn.recv(min(65536, length - len(body)))
        if not chunk:
            return None
        body += chunk
    return body


class GatewayFuzzTest(unittest.TestCase):
    """Hostile frames at the device gateway: each ends its own connection with a Refusal or a
    close, never the gateway; the gRPC server keeps answering."""

    def test_hostile_frames(self):
        rng = random.Random(20261129)
        cases = [b"\x00\x00\x00\x05garbage"[:4] + b"\xff" * 5, struct.pack(">I", 0), struct.pack(">I", (2 << 20) + 1),
                 struct.pack(">I", 0xFFFFFFFF), struct.pack(">I", 10) + b"\x0a\x08" + b"\x00" * 8]
        # Hellos with every field out of bounds, and random bodies of random lengths.
        cases.append(struct.pack(">I", 3) + b"\x0a\x01\x0a")
        for _ in range(60):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
            cases.append(struct.pack(">I", len(body)) + body)
        refused = closed = 0
        for case in cases:
            conn = device_connection()
            try:
                conn.sendall(case)
                frame = read_frame(conn)
                if frame is None:
                    closed += 1
                else:
                    self.assertEqual(frame[:1], b"\x1a", f"a Refusal answers {case[:16]!r}")
                    refused += 1
            except (ConnectionError, ssl.SSLError, socket.timeout):
                closed += 1
            finally:
                conn.close()
        # Many connections that never say Hello, held open at once.
        idle = [device_connection() for _ in range(50)]
        for conn in idle:
            conn.close()
        # The gateway still greets and the API still answers.
        device_connection().close()
        client = Linli(TARGET, CA)
        self.assertTrue(FuzzTest.serving(client))
        client.close()
        print(f"gateway fuzz: {len(cases)} hostile frames: {refused} refused with a reason, {closed} closed; "
              f"50 silent connections; gateway and API still serving", file=sys.stderr)


def encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def stored_out_of_limits():
    """Text with control characters (other than tab and line breaks) and times or dates
    outside 2000–2100 in any column of the demo tenant: each found is one line."""
    env = dict(os.environ, PGPASSWORD=os.environ.get("LINLI_POSTGRES_PASSWORD", "linli"))
    psql = ["psql", "-h", os.environ.get("LINLI_POSTGRES_HOST", "127.0.0.1"),
            "-p", os.environ.get("LINLI_POSTGRES_PORT", "25433"), "-U", os.environ.get("LINLI_POSTGRES_USER", "linli"),
            "-d", os.environ.get("LINLI_POSTGRES_DATABASE", "linli"), "-XAtq", "-v", "ON_ERROR_STOP=1"]
    script = r"""
    SET ROLE t_demo;
    DO $$
    DECLARE c record; n bigint;
    BEGIN
      FOR c IN SELECT table_name, column_name, data_type FROM information_schema.columns
               WHERE table_schema = 't_demo' AND data_type IN ('text', 'character varying', 'timestamp with time zone', 'date')
      LOOP
        IF c.data_type IN ('text', 'character varying') THEN
          EXECUTE format('SELECT count(*) FROM t_demo.%I WHERE %I ~ ''[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]''', c.table_name, c.column_name) INTO n;
        ELSE
          EXECUTE format('SELECT count(*) FROM t_demo.%I WHERE %I < ''2000-01-01'' OR %I >= ''2100-01-01''', c.table_name, c.column_name, c.column_name) INTO n;
        END IF;
        IF n > 0 THEN RAISE NOTICE 'stored out of limits: %.% (% rows)', c.table_name, c.column_name, n; END IF;
      END LOOP;
    END $$;
    """
    result = subprocess.run(psql, input=script, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        return [f"psql failed: {result.stderr.strip()}"]
    return [line for line in result.stderr.splitlines() if "stored out of limits" in line]


if __name__ == "__main__":
    unittest.main()

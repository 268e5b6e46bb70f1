"""Faults under load: PostgreSQL connections killed, PostgreSQL restarted, PostgreSQL stopped.

Eight writers publish notices with fresh request ids while the test terminates every server
connection (pg_terminate_backend), restarts PostgreSQL, and stops it for several seconds.
Then it checks what a property manager would care about:
- every call ended, with success or UNAVAILABLE, within its deadline (none hung, none went
  unanswered);
- every acknowledged notice is stored;
- retrying a failed call with its request id creates it at most once, and a retry of an
  acknowledged call returns the same notice;
- SIGTERM afterwards ends the server within 10 s.

Deploy/test runs it last, against the Python tests' server, and passes how to stop and start
PostgreSQL (LINLI_TEST_PG_STOP / LINLI_TEST_PG_START) and the server's pid.
"""
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.request
import uuid

import grpc

sys.path.insert(0, os.path.dirname(__file__))
from linli_client import Linli, notices_pb2  # noqa: E402

TARGET = os.environ.get("LINLI_TEST_TARGET", "127.0.0.1:8443")
CA = os.environ["LINLI_TEST_CA"]
PASSWORD = os.environ.get("LINLI_TEST_DEMO_PASSWORD", "linli-demo-2026")
# The client's deadline. The server bounds each transaction at 15 s once it holds a connection,
# and every statement answers when its connection dies under it (PostgresConnection.run), so
# every call must be answered well within it.
DEADLINE = 30.0


def psql(sql, database="linli"):
    env = dict(os.environ, PGPASSWORD=os.environ.get("LINLI_POSTGRES_PASSWORD", "linli"))
    command = ["psql", "-h", os.environ.get("LINLI_POSTGRES_HOST", "127.0.0.1"),
               "-p", os.environ.get("LINLI_POSTGRES_PORT", "25433"), "-U", "linli", "-d", database, "-XAtq",
               "-c", sql]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def wait_for_health(client, status, within):
    """Seconds until Health/Check answers `status` (encoded), or None within `within` s."""
    check = client.channel.unary_unary("/grpc.health.v1.Health/Check")
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            if check(b"", timeout=2.0) == status:
                return round(time.monotonic() - started, 1)
        except grpc.RpcError:
            pass
        time.sleep(0.25)
    return None


def server_alive():
    """Whether the server under test still runs (a zombie has exited)."""
    pid = int(os.environ["LINLI_TEST_SERVER_PID"])
    try:
        with open(f"/proc/{pid}/stat") as f:
            return not f.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return False


class Writers:
    def __init__(self, client, community, run):
        self.client = client
        self.community = community
        self.run = run
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged = {}   # request id → notice id
        self.failed = set()      # request ids answered UNAVAILABLE, to retry
        self.bad = []            # anything else: a wrong code or a call past its deadline
        self.calls = 0
        self.slowest = 0.0
        self.unanswered = 0
        self.titles = {}

    def publish(self, request_id, title):
        # A retry must be the same request: same id, same content.
        request = notices_pb2.PublishNoticeRequest(
            request_id=request_id, community_id=self.community, title=title, body="停水通知", category=1)
        started = time.monotonic()
        try:
            response = self.client.notices.PublishNotice(request, timeout=DEADLINE, metadata=self.client.metadata)
            self.slowest = max(self.slowest, time.monotonic() - started)
            return response.notice.id, None
        except grpc.RpcError as error:
            elapsed = time.monotonic() - started
            self.slowest = max(self.slowest, elapsed)
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return None, "unanswered"
            if error.code() != grpc.StatusCode.UNAVAILABLE or elapsed > DEADLINE:
                return None, f"{error.code().name} after {elapsed:.1f}s: {error.details()}"
            return None, "unavailable"

    def work(self, worker):
        n = 0
        while not self.stop.is_set() and server_alive():
            n += 1
            request_id = str(uuid.uuid4())
            title = f"{self.run} #{worker}-{n}"
            notice, problem = self.publish(request_id, title)
            with self.lock:
                self.titles[request_id] = title
                self.calls += 1
                if notice:
                    self.acknowledged[request_id] = notice
                elif problem in ("unavailable", "unanswered"):
                    self.failed.add(request_id)
                    if problem == "unanswered":
                        self.unanswered += 1
                else:
                    self.bad.append(problem)
            if problem:
                time.sleep(0.05)


class FaultTest(unittest.TestCase):
    def test_faults_lose_nothing_and_hang_nothing(self):
        client = Linli(TARGET, CA)
        principal = client.login("demo", "manager", PASSWORD)
        run = f"fault-{uuid.uuid4().hex[:8]}"
        writers = Writers(client, principal.community_ids[0], run)
        threads = [threading.Thread(target=writers.work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        counts = {}
        try:
            time.sleep(2)
            killed = psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE usename = 'linli' AND pid <> pg_backend_pid()")
            counts["terminated"] = killed.stdout.strip()
            time.sleep(3)
            subprocess.run(["bash", "-c", os.environ["LINLI_TEST_PG_STOP"]], check=True, timeout=60)
            subprocess.run(["bash", "-c", os.environ["LINLI_TEST_PG_START"]], check=True, timeout=60)
            counts["restarted"] = 1
            time.sleep(3)
            subprocess.run(["bash", "-c", os.environ["LINLI_TEST_PG_STOP"]], check=True, timeout=60)
            # A load balancer's view: Health turns NOT_SERVING while PostgreSQL is gone...
            counts["not_serving_after"] = wait_for_health(client, b"\x08\x02", within=8.0)
            time.sleep(max(0.0, 8 - (counts["not_serving_after"] or 8)))
            subprocess.run(["bash", "-c", os.environ["LINLI_TEST_PG_START"]], check=True, timeout=60)
            # ...and SERVING again once it is back.
            counts["serving_after"] = wait_for_health(client, b"\x08\x01", within=15.0)
            time.sleep(2)
        finally:
            writers.stop.set()
            for thread in threads:
                thread.join(timeout=DEADLINE + 5)
        self.assertFalse(any(t.is_alive() for t in threads), "a writer never got an answer")
        self.assertTrue(server_alive(), "the server died under the faults (its log follows)")

        # Retry every failed call with its own request id until it succeeds.
        retried = {}
        retry_until = time.monotonic() + 180
        for request_id in sorted(writers.failed):
            self.assertLess(time.monotonic(), retry_until, f"retrying {len(writers.failed)} failed calls took over 180 s")
            self.assertTrue(server_alive(), "the server died during the retries (its log follows)")
            for _ in range(20):
                notice, problem = writers.publish(request_id, writers.titles[request_id])
                if notice:
                    retried[request_id] = notice
                    break
                time.sleep(0.5)
        # A retry of an acknowledged call answers with the same notice, creating nothing.
        replays = list(writers.acknowledged.items())[:50]
        for request_id, notice in replays:
            for _ in range(20):
                again, problem = writers.publish(request_id, writers.titles[request_id])
                if problem not in ("unavailable", "unanswered"):
                    break
                time.sleep(0.5)
            self.assertEqual(again, notice, f"a replay answered with another notice ({problem})")

        stored = psql(f"SET ROLE t_demo; SELECT count(*), count(DISTINCT id) FROM t_demo.notices WHERE title LIKE '{run} %'")
        self.assertEqual(stored.returncode, 0, stored.stderr)
        total, distinct = (int(x) for x in stored.stdout.strip().splitlines()[-1].split("|"))
        acknowledged_ids = set(writers.acknowledged.values()) | set(retried.values())
        missing = psql("SET ROLE t_demo; SELECT count(*) FROM t_demo.notices WHERE id = ANY('{%s}'::uuid[])"
                       % ",".join(acknowledged_ids))
        found = int(missing.stdout.strip().splitlines()[-1])

        print(f"fault: {writers.calls} calls, {len(writers.acknowledged)} acknowledged, {len(writers.failed)} UNAVAILABLE "
              f"then retried ({len(retried)} succeeded), {len(replays)} replays, {total} notices stored, "
              f"connections terminated: {counts.get('terminated')}, bad answers: {len(writers.bad)}, "
              f"slowest answer {writers.slowest:.1f} s, unanswered within {DEADLINE:.0f} s: {writers.unanswered}", file=sys.stderr)
        for problem in writers.bad[:20]:
            print("  " + problem, file=sys.stderr)
        self.assertEqual(writers.bad, [])
        self.assertEqual(writers.unanswered, 0, f"calls left unanswered for {DEADLINE:.0f} s")
        self.assertEqual(len(retried), len(writers.failed), "a failed call could not be retried to success")
        self.assertEqual(found, len(acknowledged_ids), "an acknowledged notice is missing")
        self.assertEqual(total, len(acknowledged_ids), "a retried request created a second notice")
        self.assertEqual(total, distinct)
        self.assertGreater(len(writers.acknowledged), 0)
        print(f"fault: Health NOT_SERVING {counts['not_serving_after']} s after PostgreSQL stopped, "
              f"SERVING {counts['serving_after']} s after it started", file=sys.stderr)
        self.assertIsNotNone(counts["not_serving_after"], "Health never reported NOT_SERVING during the outage")
        self.assertIsNotNone(counts["serving_after"], "Health did not report SERVING after the outage")

        # The operator's view: the outage is in the metrics.
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{os.environ['LINLI_METRICS_PORT']}/metrics", timeout=10).read().decode()
        unavailable = sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("linli_db_unavailable"))
        print(f"fault: /metrics linli_db_unavailable {unavailable:.0f}", file=sys.stderr)
        self.assertGreater(unavailable, 0)
        self.assertIn("linli_serving 1", metrics)
        self.assertIn('rpc_server_requests{rpc_method="linli.property.v1.NoticeService/PublishNotice",rpc_status="ok"}', metrics)
        timeouts = sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("linli_db_transaction_timeouts"))
        print(f"fault: /metrics linli_db_transaction_timeouts {timeouts:.0f}", file=sys.stderr)

        pid = int(os.environ["LINLI_TEST_SERVER_PID"])
        started = time.monotonic()
        os.kill(pid, 15)
        while time.monotonic() - started < 15:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            # A zombie (exited, not yet reaped by Deploy/test) has finished as well.
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().split(") ")[1].startswith("Z"):
                        break
            except FileNotFoundError:
                break
            time.sleep(0.1)
        took = time.monotonic() - started
        print(f"fault: SIGTERM → exit in {took:.1f} s", file=sys.stderr)
        self.assertLess(took, 10.0)
        client.close()


if __name__ == "__main__":
    unittest.main()

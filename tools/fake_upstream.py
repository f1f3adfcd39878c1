"""A local stand-in for the Synthetic and Z.ai quota APIs.

For trying SynTrack without real keys, for the end-to-end tests and for the
benchmarks. Usage grows a little on every request and resets now and then,
so cycles appear. Standard library only.

To drive alerts by hand, pin Synthetic's subscription and Z.ai's 5-hour window
to a share of their limits (``PUT /fake/usage?percent=85``; without
``percent``, usage grows on its own again):

    python tools/fake_upstream.py --port 9300
    curl -X PUT 'http://127.0.0.1:9300/fake/usage?percent=96'
    SYNTHETIC_API_KEY=syn_fake_key_123456 SYNTHETIC_BASE_URL=http://127.0.0.1:9300 \\
    ZAI_API_KEY=zai-fake-key-123456 ZAI_BASE_URL=http://127.0.0.1:9300/api make run
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import json
import math
import os
import random
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOOL_CALLS_WRAP = 900


class State:
    def __init__(self, shape: str, zai_shape: str, reset_every: int, delay: float = 0.0, status: int = 200) -> None:
        self.lock = threading.Lock()
        self.shape = shape
        self.zai_shape = zai_shape
        self.reset_every = reset_every
        # Tests may change these while the server runs.
        self.delay = delay
        self.status = status
        self.synthetic_calls = 0
        self.zai_calls = 0
        # Requests received, counted before any delay: "a request is in flight".
        self.arrived = 0
        self.stopping = threading.Event()
        self.started = datetime.now(UTC)
        # Percent of their limits Synthetic's subscription and Z.ai's 5-hour window report, or None.
        self.pinned: float | None = None
        # Injected faults (tools/soak.py): provider -> the FAULTS mode of the next answer, or None
        # for none; each answer's (provider, mode) is appended to ``served``, in order.
        self.fault: Callable[[str], str] | None = None
        self.served: list[tuple[str, str]] = []
        # What "now" is in the answers (the soak's simulated clock); None: the real clock.
        self.clock: Callable[[], datetime] | None = None

    def now(self) -> datetime:
        return self.clock() if self.clock is not None else datetime.now(UTC)

    def arrive(self) -> None:
        with self.lock:
            self.arrived += 1

    def window_end(self, calls: int, length: timedelta) -> datetime:
        # Each "window" lasts reset_every requests; its end moves on with it.
        window = calls // self.reset_every
        return self.started + length * (window + 1)

    def synthetic(self) -> dict:
        with self.lock:
            self.synthetic_calls += 1
            n = self.synthetic_calls
        in_window = n % self.reset_every
        now = self.now()
        pinned = self.pinned
        # Pinned usage keeps one window: only a drop in usage starts another.
        renews = self.window_end(n, timedelta(hours=5)) if pinned is None else self.started + timedelta(hours=5)
        body = {
            "subscription": {
                "limit": 1350,
                "requests": round(in_window * 25.5, 1) if pinned is None else round(1350 * pinned / 100, 1),
                "renewsAt": _iso(renews),
            },
            # search renewsAt drifts with every poll, as the real one does
            "search": {"hourly": {"limit": 250, "requests": in_window % 7, "renewsAt": _iso(now + timedelta(hours=1))}},
        }
        tools = {"limit": 16200, "requests": 7000 + n, "renewsAt": _iso(self.window_end(n, timedelta(days=1)))}
        if self.shape == "v1":
            body["toolCallDiscounts"] = tools
        else:
            body["freeToolCalls"] = tools
        if self.shape == "v3":
            remaining = max(500 - in_window * 9, 0)
            body["rollingFiveHourLimit"] = {
                "nextTickAt": _iso(now + timedelta(minutes=15)),
                "tickPercent": 0.05,
                "remaining": remaining,
                "max": 500,
                "limited": remaining == 0,
            }
            body["weeklyTokenLimit"] = {
                "nextRegenAt": _iso(now + timedelta(minutes=202)),
                "percentRemaining": 46.7,
                "maxCredits": "$24.00",
                "remainingCredits": f"${max(24 - in_window * 0.37, 0):.2f}",
                "nextRegenCredits": "$0.48",
            }
        return body

    def zai(self) -> dict:
        with self.lock:
            self.zai_calls += 1
            n = self.zai_calls
        in_window = n % self.reset_every
        # The monthly tool calls count up from 60 and start over past 900 calls: never above the 1000 allowed.
        tool_n = n % TOOL_CALLS_WRAP
        ms = lambda d: int(d.timestamp() * 1000)  # noqa: E731
        kind = "CREDIT_LIMIT" if self.zai_shape == "v3" else "TOKENS_LIMIT"
        cap_5h, cap_week = (2000, 10000) if kind == "CREDIT_LIMIT" else (80_000_000, 400_000_000)
        used_5h = cap_5h * in_window / (self.reset_every * 1.25) if self.pinned is None else cap_5h * self.pinned / 100
        limits = [
            {
                "type": kind,
                "unit": 3,
                "number": 5,
                "usage": cap_5h,
                "currentValue": used_5h,
                "remaining": cap_5h - used_5h,
                "percentage": int(used_5h / cap_5h * 100),
                "nextResetTime": ms(
                    self.window_end(n, timedelta(hours=5)) if self.pinned is None else self.started + timedelta(hours=5)
                ),
            },
            {
                "type": kind,
                "unit": 6,
                "number": 1,
                "usage": cap_week,
                "currentValue": cap_week * 0.3 + n,
                "remaining": cap_week * 0.7 - n,
                "percentage": 30,
                "nextResetTime": ms(self.started + timedelta(days=7)),
            },
        ]
        if kind == "TOKENS_LIMIT":
            limits.append(
                {
                    "type": "TIME_LIMIT",
                    "unit": 5,
                    "number": 1,
                    "usage": 1000,
                    "currentValue": 60 + tool_n,
                    "remaining": 940 - tool_n,
                    "percentage": 6,
                    "nextResetTime": ms(self.started + timedelta(days=30)),
                    "usageDetails": [
                        {"modelCode": "search-prime", "usage": 30 + tool_n},
                        {"modelCode": "web-reader", "usage": 20},
                        {"modelCode": "zread", "usage": 10},
                    ],
                }
            )
        return {"code": 200, "msg": "Operation successful", "success": True, "data": {"limits": limits, "level": "pro"}}


# What the fake can answer instead of a good payload (State.fault), and the poll outcome each must
# give: "extra" is a good payload with an unknown key (ok, flagged as drift, a usable snapshot),
# "drift" a payload without any known quota (an unusable snapshot), "truncated" a body cut short
# by a dropped connection (its Content-Length promised more).
FAULTS = {
    "ok": "ok",
    "extra": "ok",
    "500": "server_error",
    "502": "server_error",
    "503": "server_error",
    "429": "rate_limited",
    "401": "unauthorized",
    "invalid_json": "invalid_response",
    "html": "invalid_response",
    "empty": "invalid_response",
    "truncated": "network_error",
    "drift": "drift",
}
RETRY_AFTER = "30"


def random_faults(seed: int, share: float = 0.3) -> Callable[[str], str]:
    """A seeded fault schedule for ``State.fault``: a fault (any but "ok", evenly) on ``share`` of the answers."""
    rng = random.Random(seed)
    faults = sorted(set(FAULTS) - {"ok"})
    lock = threading.Lock()

    def pick(provider: str) -> str:
        with lock:
            return rng.choice(faults) if rng.random() < share else "ok"

    return pick


# Faults for scripted runs only (quotas/tests/test_upstream_faults.py), with the poll outcome each
# must give. Never in FAULTS: random_faults (tools/soak.py) keeps its set and its speed, and some of
# these hold a request for the client's whole deadline.
SCRIPTED_FAULTS = {
    "hang": "network_error",  # reads the request, never answers
    "trickle_headers": "network_error",  # the status line and headers, 1 byte a second
    "trickle_body": "network_error",  # a good payload, 1 byte a second
    "reset": "network_error",  # half of a good payload, then a TCP reset
    "big_body": "invalid_response",  # a good payload padded to 10 MB, its Content-Length says so
    "big_body_unsized": "invalid_response",  # the same without Content-Length, until the connection closes
    "gzip_bomb": "invalid_response",  # ~1 MB of gzip (Content-Encoding) inflating to over 1 GiB
    "html_key": "invalid_response",  # an HTML error page quoting the Authorization header it got
    # Z.ai's errors inside an HTTP 200 (upstream-apis.md §1.2, §3.3)
    "zai_1001": "unauthorized",
    "zai_401": "unauthorized",
    "zai_1113": "unauthorized",
    "zai_1302": "rate_limited",
    "zai_500": "server_error",
}
# An impossible figure inside an otherwise good payload (raw JSON NaN/Infinity for the floats): in one
# Synthetic window (the poll is ok, the window left out and flagged), in every Z.ai window (drift).
NUMBER_FAULTS: dict[str, object] = {
    "nan": math.nan,
    "infinity": math.inf,
    "nan_text": "NaN",
    "huge": 1e308,
    "negative": -5,
}
# Where each number fault goes in Synthetic's payload (block path, field); Z.ai: every currentValue.
SYNTHETIC_NUMBER_FIELDS = {
    "nan": (("subscription",), "requests"),
    "infinity": (("rollingFiveHourLimit",), "remaining"),
    "nan_text": (("weeklyTokenLimit",), "remainingCredits"),
    "huge": (("freeToolCalls",), "limit"),
    "negative": (("search", "hourly"), "requests"),
}
ZAI_ERRORS = {
    "zai_1001": {"code": 1001, "msg": "Authorization Token missing or invalid", "success": False},
    "zai_401": {"code": 401, "msg": "token expired or incorrect", "success": False, "data": None},
    "zai_1113": {"code": 1113, "msg": "当前用户不存在coding plan", "success": False, "data": None},
    "zai_1302": {"code": 1302, "msg": "Rate limit reached for requests", "success": False, "data": None},
    "zai_500": {"code": 500, "msg": "Internal server error", "success": False, "data": None},
}
BIG_BODY_BYTES = 10 * 1024 * 1024
BOMB_INFLATED_BYTES = (1 << 30) + (1 << 20)
TRICKLE_SECONDS = 1.0
# The page html_key serves; the handler puts the request's Authorization header in its place.
AUTHORIZATION_PLACEHOLDER = b"{authorization}"


class Script:
    """Scripted answers for ``State.fault``: each provider's modes in order, then ``then`` for ever.

    ``log`` lists every answer chosen as (provider, mode, wall-clock time of the request).
    """

    def __init__(self, sequences: dict[str, list[str]], then: str = "ok") -> None:
        self.pending = {provider: list(modes) for provider, modes in sequences.items()}
        self.then = then
        self.lock = threading.Lock()
        self.log: list[tuple[str, str, float]] = []

    def __call__(self, provider: str) -> str:
        with self.lock:
            queue = self.pending.get(provider)
            mode = queue.pop(0) if queue else self.then
            self.log.append((provider, mode, time.time()))
        return mode

    def requests(self, provider: str) -> list[tuple[str, float]]:
        """(mode, time) of each request ``provider`` made, in order."""
        with self.lock:
            return [(mode, at) for p, mode, at in self.log if p == provider]


def scripted_faults(sequences: dict[str, list[str]], then: str = "ok") -> Script:
    """A per-provider scripted fault sequence for ``State.fault``, e.g. ``{"zai": ["500", "500", "ok"]}``."""
    return Script(sequences, then)


def _scripted_answer(state: State, provider: str, mode: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a SCRIPTED_FAULTS or NUMBER_FAULTS answer (the handler delivers some specially)."""
    json_type = {"Content-Type": "application/json"}
    if mode in ZAI_ERRORS:
        return 200, json_type, json.dumps(ZAI_ERRORS[mode], ensure_ascii=False).encode()
    if mode == "html_key":
        page = b"<html><body><h1>401</h1><p>Rejected credentials: " + AUTHORIZATION_PLACEHOLDER + b"</p></body></html>"
        return 200, {"Content-Type": "text/html"}, page
    good = state.synthetic() if provider == "synthetic" else state.zai()
    if mode in NUMBER_FAULTS:
        return 200, json_type, json.dumps(_with_bad_number(good, provider, NUMBER_FAULTS[mode], mode)).encode()
    if mode in ("big_body", "big_body_unsized"):
        # Valid JSON, a good payload but for its size: only the body cap keeps it out.
        data = json.dumps(good).encode()
        padding = b"x" * (BIG_BODY_BYTES - len(data))
        return 200, json_type, data[:-1] + b', "padding": "' + padding + b'"}'
    if mode == "gzip_bomb":
        return 200, {**json_type, "Content-Encoding": "gzip"}, _gzip_bomb(json.dumps(good).encode())
    if mode in ("hang", "trickle_headers", "trickle_body", "reset"):
        return 200, json_type, json.dumps(good).encode()
    raise ValueError(f"unknown fault mode {mode!r}")


def _with_bad_number(body: dict, provider: str, value: object, mode: str) -> dict:
    if provider == "synthetic":
        path, name = SYNTHETIC_NUMBER_FIELDS[mode]
        block = body
        for key in path:
            block = block[key]
        block[name] = value
    else:
        for limit in body["data"]["limits"]:
            limit["currentValue"] = value
    return body


@functools.cache
def _spaces_member() -> bytes:
    return gzip.compress(b" " * (1 << 20), 9)


def _gzip_bomb(payload: bytes) -> bytes:
    """``payload`` then over 1 GiB of spaces (still valid JSON), gzipped: members of 1 MiB each, ~1 KB apiece."""
    return gzip.compress(payload) + _spaces_member() * (BOMB_INFLATED_BYTES >> 20)


def faulty_answer(state: State, provider: str, mode: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one answer in fault ``mode`` (see FAULTS)."""
    json_type = {"Content-Type": "application/json"}
    if mode in ("ok", "extra"):
        body = state.synthetic() if provider == "synthetic" else state.zai()
        if mode == "extra":
            if provider == "synthetic":
                body["betaLimit"] = {"limit": 5, "requests": 1}
            else:
                body["data"]["betaField"] = {"enabled": True}
        return 200, json_type, json.dumps(body).encode()
    if mode in ("500", "502", "503"):
        return int(mode), json_type, b'{"error": "upstream trouble"}'
    if mode == "429":
        return 429, {**json_type, "Retry-After": RETRY_AFTER}, b'{"error": "slow down"}'
    if mode == "401":
        return 401, json_type, b'{"error": "Invalid API key"}'
    if mode == "invalid_json":
        return 200, json_type, b'{"subscription": {"limit": 1350, "requests": '
    if mode == "html":
        return 200, {"Content-Type": "text/html"}, b"<html><body><h1>Service Unavailable</h1></body></html>"
    if mode == "empty":
        return 200, json_type, b""
    if mode == "truncated":  # the whole body: the handler sends half of it
        return 200, json_type, json.dumps({"subscription": {"limit": 1350, "requests": 0, "renewsAt": None}}).encode()
    if mode == "drift":
        if provider == "synthetic":
            return 200, json_type, json.dumps({"credits": {"balance": 3, "currency": "usd"}}).encode()
        return 200, json_type, json.dumps({"code": 200, "success": True, "data": {"quotaList": []}}).encode()
    if mode in SCRIPTED_FAULTS or mode in NUMBER_FAULTS:
        return _scripted_answer(state, provider, mode)
    raise ValueError(f"unknown fault mode {mode!r}")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.arrive()
            if state.delay and state.stopping.wait(state.delay):
                return  # the server is shutting down
            if state.fault is not None and self.path.endswith(("/v2/quotas", "/monitor/usage/quota/limit")):
                self.answer_fault("synthetic" if self.path.endswith("/v2/quotas") else "zai")
                return
            if self.path.endswith("/v2/quotas"):
                body = state.synthetic()
            elif self.path.endswith("/monitor/usage/quota/limit"):
                body = state.zai()
            else:
                self.send_error(404)
                return
            if not self.headers.get("Authorization"):
                status_code, body = 401, {"error": "Invalid API key"}
            else:
                status_code = state.status
            data = json.dumps(body).encode()
            # The client may have given up (a poller stopped mid-request).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def answer_fault(self, provider: str) -> None:
            mode = state.fault(provider)
            with state.lock:
                state.served.append((provider, mode))
            status_code, headers, data = faulty_answer(state, provider, mode)
            if mode in self.SPECIAL_DELIVERIES:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    getattr(self, self.SPECIAL_DELIVERIES[mode])(status_code, headers, data)
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status_code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                if mode == "truncated":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                    data = data[: len(data) // 2]
                self.end_headers()
                self.wfile.write(data)

        # SCRIPTED_FAULTS answers that are more than a status, headers and a body.
        SPECIAL_DELIVERIES = {
            "hang": "hang",
            "trickle_headers": "trickle_headers",
            "trickle_body": "trickle_body",
            "reset": "reset_mid_body",
            "big_body_unsized": "unsized",
            "html_key": "echo_authorization",
        }

        def head(self, status_code: int, headers: dict[str, str], length: int | None) -> bytes:
            lines = [f"HTTP/1.0 {status_code} {self.responses.get(status_code, ('',))[0]}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            if length is not None:
                lines.append(f"Content-Length: {length}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

        def trickle(self, data: bytes) -> None:
            """``data`` a byte at a time, one a second, until done, the client gone or the server stopping."""
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                if state.stopping.wait(TRICKLE_SECONDS):
                    return

        def hang(self, status_code: int, headers: dict[str, str], data: bytes) -> None:
            # Nothing at all, until the client hangs up (a read of its end says so) or the server stops.
            deadline = time.monotonic() + 120
            while not state.stopping.is_set() and time.monotonic() < deadline:
                readable, _, _ = select.select([self.connection], [], [], 0.25)
                if readable and not self.connection.recv(1):
                    return

        def trickle_headers(self, status_code: int, headers: dict[str, str], data: bytes) -> None:
            self.trickle(self.head(status_code, headers, len(data)))
            self.close_connection = True

        def trickle_body(self, status_code: int, headers: dict[str, str], data: bytes) -> None:
            self.wfile.write(self.head(status_code, headers, len(data)))
            self.trickle(data)
            self.close_connection = True

        def reset_mid_body(self, status_code: int, headers: dict[str, str], data: bytes) -> None:
            self.wfile.write(self.head(status_code, headers, len(data)) + data[: len(data) // 2])
            time.sleep(0.2)  # the half arrives first; then a reset (RST), not an orderly end (FIN)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())
            self.close_connection = True

        def unsized(self, status_code: int, headers: dict[str, str], data: bytes) -> None:
            # HTTP/1.0 without Content-Length: the body ends where the connection does.
            self.wfile.write(self.head(status_code, headers, None))
            self.wfile.write(data)
            self.close_connection = True

        def echo_authorization(self, status_code: int, headers: dict[str, str], data: bytes) -> None:
            data = data.replace(AUTHORIZATION_PLACEHOLDER, (self.headers.get("Authorization") or "").encode())
            self.wfile.write(self.head(status_code, headers, len(data)) + data)
            self.close_connection = True

        def do_PUT(self) -> None:
            """``/fake/usage?percent=P``: pin the usage the answers report (no percent: let it grow again)."""
            parts = urlsplit(self.path)
            if parts.path != "/fake/usage":
                self.send_error(404)
                return
            value = parse_qs(parts.query).get("percent", [""])[0]
            try:
                state.pinned = float(value) if value else None
            except ValueError:
                self.send_error(400, "percent must be a number")
                return
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class FakeUpstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, state: State) -> None:
        self.state = state
        super().__init__(("127.0.0.1", port), make_handler(state))

    def shutdown(self) -> None:
        self.state.stopping.set()  # cut delayed answers short
        super().shutdown()


def serve(
    port: int, shape: str = "v3", zai_shape: str = "v2", delay: float = 0.0, status: int = 200, reset_every: int = 30
) -> FakeUpstream:
    """A server on 127.0.0.1 (port 0 picks a free one); run ``serve_forever()`` in a thread.

    ``server.state`` counts requests and lets a test change ``delay`` and ``status`` on the fly.
    """
    return FakeUpstream(port, State(shape, zai_shape, reset_every, delay, status))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9300)
    parser.add_argument("--synthetic-shape", choices=["v1", "v2", "v3"], default="v3")
    parser.add_argument("--zai-shape", choices=["v2", "v3"], default="v2")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before every answer")
    parser.add_argument("--status", type=int, default=200, help="HTTP status of every answer")
    parser.add_argument("--reset-every", type=int, default=30, help="requests per quota window")
    args = parser.parse_args()
    server = serve(args.port, args.synthetic_shape, args.zai_shape, args.delay, args.status, args.reset_every)
    print(f"fake upstream on http://127.0.0.1:{server.server_port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()

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
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


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
        now = datetime.now(UTC)
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
                    "currentValue": 60 + n,
                    "remaining": 940 - n,
                    "percentage": 6,
                    "nextResetTime": ms(self.started + timedelta(days=30)),
                    "usageDetails": [
                        {"modelCode": "search-prime", "usage": 30 + n},
                        {"modelCode": "web-reader", "usage": 20},
                        {"modelCode": "zread", "usage": 10},
                    ],
                }
            )
        return {"code": 200, "msg": "Operation successful", "success": True, "data": {"limits": limits, "level": "pro"}}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.arrive()
            if state.delay and state.stopping.wait(state.delay):
                return  # the server is shutting down
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

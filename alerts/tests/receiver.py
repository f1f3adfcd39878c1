"""A real HTTP receiver on 127.0.0.1 for delivery tests: it records what it is sent and answers as told."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """``with Receiver() as hook:`` … ``hook.url("/path")``; ``hook.statuses`` answers in turn (then 200),
    ``hook.hang`` seconds of silence before answering."""

    def __init__(self, statuses: list[int] | None = None, hang: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.hang = hang
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver.lock:
                    receiver.received.append(
                        {"path": self.path, "body": body.decode("utf-8", "replace"), "headers": dict(self.headers)}
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.hang:
                    time.sleep(receiver.hang)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the client gave up waiting

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, scheme: str = "json", path: str = "/hook", userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}127.0.0.1:{self.port}{path}"

    def json_bodies(self) -> list[dict]:
        return [json.loads(item["body"]) for item in self.received if item["body"].startswith("{")]

"""``make demo``: SynTrack with 30 days of simulated history and a local fake upstream, no keys needed.

1. A throw-away SQLite database in ``.demo/`` (git-ignored), made afresh each time.
2. ``manage.py migrate``: creates the user ``admin`` and prints its generated password.
3. ``manage.py demo --days 30``: the history (quotas.demo).
4. ``tools/fake_upstream.py`` on a free loopback port stands in for both providers,
   and ``manage.py serve`` polls it and serves the dashboard, as ``make run`` does.

Ctrl-C stops everything. Only 127.0.0.1 is ever bound. Standard library only.

    .venv/bin/python tools/run_demo.py [--days N] [--port P]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.fake_upstream import serve  # noqa: E402

DEMO_DIR = ROOT / ".demo"
DEFAULT_PORT = 9212  # next to make run's 9211, so both can run at once


def demo_env(upstream_port: int, port: int) -> dict[str, str]:
    """The environment of every child: these win over anything in ``.env``."""
    upstream = f"http://127.0.0.1:{upstream_port}"
    env = dict(os.environ)
    env.update(
        DATABASE_URL="",  # never the real database, even when .env names one
        SYNTRACK_DB_PATH=str(DEMO_DIR / "syntrack.db"),
        SYNTHETIC_API_KEY="syn_demo_key_0000000000",
        SYNTHETIC_BASE_URL=upstream,
        ZAI_API_KEY="zai-demo-key-0000000000",
        ZAI_BASE_URL=f"{upstream}/api",
        SYNTRACK_ADMIN_USER="admin",
        SYNTRACK_ADMIN_PASS="",  # generated and printed by migrate
        SYNTRACK_HOST="127.0.0.1",
        SYNTRACK_PORT=str(port),
        SYNTRACK_POLL_INTERVAL="60",
        PYTHONUNBUFFERED="1",
    )
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of simulated history (default 30)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"dashboard port (default {DEFAULT_PORT})")
    args = parser.parse_args()

    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir()
    upstream = serve(0)
    threading.Thread(target=upstream.serve_forever, name="fake-upstream", daemon=True).start()
    env = demo_env(upstream.server_port, args.port)
    manage = [sys.executable, "manage.py"]
    try:
        # migrate prints the generated admin password.
        for step in (["migrate", "--noinput", "--verbosity", "0"], ["collectstatic", "--noinput", "--verbosity", "0"]):
            subprocess.run([*manage, *step], cwd=ROOT, env=env, check=True)
        print(f"Filling {args.days} days of demo history...", flush=True)
        subprocess.run([*manage, "demo", "--days", str(args.days)], cwd=ROOT, env=env, check=True)
        print(f"Fake upstream on http://127.0.0.1:{upstream.server_port} stands in for Synthetic and Z.ai.", flush=True)
        server = subprocess.Popen([*manage, "serve"], cwd=ROOT, env=env)
        # Ctrl-C reaches serve from the terminal too; a SIGTERM to this script alone is passed on.
        # serve then stops the poller and gunicorn, and this script the fake upstream.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda signum, frame: server.send_signal(signal.SIGTERM))
        return server.wait()
    except subprocess.CalledProcessError as e:
        return e.returncode
    except KeyboardInterrupt:
        return 130
    finally:
        upstream.shutdown()
        upstream.server_close()


if __name__ == "__main__":
    sys.exit(main())

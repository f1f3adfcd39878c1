"""Settings for the test suite: hermetic, fast, and shareable with subprocesses.

The process environment is fixed before the real settings are read, so a
developer's .env (with real keys) never reaches a test.
"""

import os
import tempfile

_tmp = tempfile.mkdtemp(prefix="syntrack-test-")
os.environ.setdefault("SYNTRACK_DB_PATH", os.path.join(_tmp, "syntrack.db"))
os.environ.setdefault("SECRET_KEY", "test-secret-key-that-is-long-enough-0123456789")
for _name in ("SYNTHETIC_API_KEY", "ZAI_API_KEY"):
    os.environ[_name] = ""
os.environ["SYNTRACK_ADMIN_USER"] = "admin"
os.environ["SYNTRACK_ADMIN_PASS"] = "changeme"

from syntrack_site.settings import *  # noqa: E402, F403
from syntrack_site.settings import DATABASES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A file, not ":memory:", so the poller subprocesses of the tests can open it.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(_tmp, "test.sqlite3")}

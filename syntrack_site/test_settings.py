"""Settings for the test suite: hermetic, fast, and shareable with subprocesses.

The process environment is fixed before the real settings are read, so a
developer's .env (with real keys, another database, a different interval)
never reaches a test: every variable the environment does not set is set
empty here, and an empty variable both beats .env and means "the default".
"""

import atexit
import os
import shutil
import tempfile

from syntrack_site.config import VARIABLES

_tmp = tempfile.mkdtemp(prefix="syntrack-test-")
# Each test run (each xdist worker) has its own directory; it goes with it.
atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
for _name in VARIABLES:
    os.environ.setdefault(_name, "")
if not os.environ["SYNTRACK_DB_PATH"]:
    os.environ["SYNTRACK_DB_PATH"] = os.path.join(_tmp, "syntrack.db")
if not os.environ["SECRET_KEY"]:
    os.environ["SECRET_KEY"] = "test-secret-key-that-is-long-enough-0123456789"
for _name in ("SYNTHETIC_API_KEY", "ZAI_API_KEY"):
    os.environ[_name] = ""
os.environ["SYNTRACK_ADMIN_USER"] = "admin"
# A default password on purpose: the warning, the banner and the refusal to
# serve beyond loopback stay exercised. Tests of the generated password set it empty.
os.environ["SYNTRACK_ADMIN_PASS"] = "changeme"

from syntrack_site.settings import *  # noqa: E402, F403
from syntrack_site.settings import DATABASES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A developer's .env is not the tests' business, its typos included (syntrack_site.checks).
SYNTRACK_ENV_FILE = None

# A file, not ":memory:", so the poller subprocesses of the tests can open it.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(_tmp, "test.sqlite3")}

# Templates resolve {% static %} without a collectstatic run; the manifest
# storage of production is exercised by quotas/tests/test_static_manifest.py.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# whitenoise wants the collected directory to exist; tests never collect into the project.
STATIC_ROOT = os.path.join(_tmp, "staticfiles")
os.makedirs(STATIC_ROOT, exist_ok=True)

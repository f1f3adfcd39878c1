"""Authentication of the JSON API: the session cookie, HTTP Basic Auth, or a read-only token.

Basic credentials are verified once with the password hasher and remembered
in-process for ``BASIC_CACHE_SECONDS``, keyed by an HMAC of the credentials
with SECRET_KEY (never the password itself), together with the password hash
they matched. A hit whose user's hash changed since (a password change in
any process) is forgotten and verified afresh (product.md §10).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from accounts import throttle, tokens
from accounts.models import ApiToken

BASIC_CACHE_SECONDS = 60.0
BASIC_CACHE_SIZE = 256
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}

View = Callable[..., HttpResponse]


class BasicCache:
    """A small, thread-safe map of credential HMAC → (expiry, user id, password hash)."""

    def __init__(self, ttl: float = BASIC_CACHE_SECONDS, size: int = BASIC_CACHE_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, tuple[float, int, str]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(username: str, password: str) -> str:
        message = f"{len(username)}:{username}:{password}".encode("utf-8", "surrogatepass")
        return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()

    def get(self, key: str) -> tuple[int, str] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[1], entry[2]

    def put(self, key: str, user_id: int, password_hash: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (time.monotonic() + self.ttl, user_id, password_hash)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def forget_user(self, user_id: int) -> None:
        with self._lock:
            for key in [k for k, entry in self._entries.items() if entry[1] == user_id]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


basic_cache = BasicCache()


def error(message: str, status: int, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def unauthorized(message: str = "authentication required") -> JsonResponse:
    # No WWW-Authenticate header: browsers must not pop up a login dialog.
    return error(message, 401)


def locked_out(seconds: int) -> JsonResponse:
    return error(f"too many failed logins; try again in {seconds} s", 429, Retry_After=str(seconds))


def basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    """(username, password) from an ``Authorization: Basic`` header, else None.

    A Basic header that cannot be decoded gives ("", "") so it fails as a login.
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "", ""
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else ("", "")


def _cached_user(key: str) -> AbstractBaseUser | None:
    hit = basic_cache.get(key)
    if hit is None:
        return None
    user_id, password_hash = hit
    user = get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
    if user is None or not hmac.compare_digest(user.password, password_hash):
        basic_cache.forget(key)  # the password (or the account) changed
        return None
    return user


def basic_login(request: HttpRequest, username: str, password: str) -> AbstractBaseUser | HttpResponse:
    """The user the credentials belong to, or the 401/429 response to send."""
    address = throttle.address_of(request)
    row = throttle.state(address)
    seconds = throttle.retry_after(row)
    if seconds is not None:
        return locked_out(seconds)
    key = basic_cache.key(username, password)
    user = _cached_user(key)
    if user is None:
        # A failure is counted by the user_login_failed receiver (accounts.throttle).
        user = authenticate(request, username=username, password=password)
        if user is None:
            seconds = throttle.locked_for(address)
            return locked_out(seconds) if seconds is not None else unauthorized("wrong username or password")
        basic_cache.put(key, user.pk, user.password)
    if row is not None:
        throttle.record_success(address)
    return user


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    """Django's own CSRF check, for cookie-authenticated writes."""
    check = CsrfViewMiddleware(lambda request: HttpResponse())
    check.process_request(request)
    result = check.process_view(request, lambda request: HttpResponse(), (), {})
    if result is None:
        return None
    return error("CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header", 403)


def token_login(request: HttpRequest, token: str) -> ApiToken | HttpResponse:
    """The read-only token ``token`` is, or the 401/403/429 response to send.

    Unknown tokens count as failed logins of the address (guessing is
    throttled like passwords); a known one opens safe methods only.
    """
    address = throttle.address_of(request)
    seconds = throttle.locked_for(address)
    if seconds is not None:
        return locked_out(seconds)
    row = tokens.find(token)
    if row is None:
        seconds = throttle.record_failure(address)
        return locked_out(seconds) if seconds is not None else unauthorized("unknown or revoked API token")
    if request.method not in SAFE_METHODS:
        return error("API tokens are read-only: sign in to change anything", 403)
    return row


def api_auth(view: View) -> View:
    """Let a request through with a session, Basic credentials or a read-only token; JSON 401 otherwise.

    A token (``Authorization: Bearer stk_…``) opens safe methods only (403
    JSON on writes); ``request.user`` then stays anonymous and
    ``request.api_token`` says which token it was. Basic Auth wins over a
    session when both are present. Session-authenticated writes need the
    CSRF token; Basic-authenticated ones do not (no browser sends them on its
    own). ``request.auth_method`` tells the view which one it was.
    """

    @csrf_exempt
    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        token = tokens.bearer(request)
        credentials = basic_credentials(request) if token is None else None
        if token is not None:
            result = token_login(request, token)
            if isinstance(result, HttpResponse):
                return result
            request.user = AnonymousUser()
            request.api_token = result
            request.auth_method = "token"
        elif credentials is not None:
            result = basic_login(request, *credentials)
            if isinstance(result, HttpResponse):
                return result
            request.user = result
            request.auth_method = "basic"
        elif request.user.is_authenticated:
            if request.method not in SAFE_METHODS:
                failure = _csrf_failure(request)
                if failure is not None:
                    return failure
            request.auth_method = "session"
        else:
            return unauthorized()
        return view(request, *args, **kwargs)

    return wrapped

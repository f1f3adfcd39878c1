"""Security headers, Secure cookies over HTTPS, and the client address behind trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# `default-src 'self'` (product.md §9), spelled out for what it does not cover.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Django's admin puts a <style> element in its change lists; nothing else of it is inline.
ADMIN_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY + "; style-src 'self' 'unsafe-inline'"


@cache
def _trusted_networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks = []
    for proxy in proxies:
        try:
            networks.append(ipaddress.ip_network(proxy, strict=False))
        except ValueError:
            continue  # not an address: never matches
    return tuple(networks)


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:1234"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:1234"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_trusted_proxy(address: str) -> bool:
    parsed = _parse_address(address)
    if parsed is None:
        return False
    return any(parsed in network for network in _trusted_networks(tuple(settings.SYNTRACK_TRUSTED_PROXIES)))


def client_address(request: HttpRequest) -> str:
    """The address of the client, for throttling and logs.

    ``REMOTE_ADDR``, unless that is a trusted proxy (SYNTRACK_TRUSTED_PROXIES):
    then the right-most ``X-Forwarded-For`` entry that is not itself a trusted
    proxy. Entries left of it were written by the client and prove nothing.
    """
    remote = request.META.get("REMOTE_ADDR") or ""
    if not settings.SYNTRACK_TRUSTED_PROXIES or not is_trusted_proxy(remote):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for entry in reversed(forwarded.split(",")):
        parsed = _parse_address(entry)
        if parsed is None:
            break  # garbage: stop believing the chain here
        if not is_trusted_proxy(str(parsed)):
            return str(parsed)
    return remote


class SecurityHeadersMiddleware:
    """Belongs first in MIDDLEWARE.

    - Drops ``X-Forwarded-Proto`` unless a trusted proxy sent it, so
      ``SECURE_PROXY_SSL_HEADER`` (and with it HSTS) believes only proxies.
    - Adds the Content-Security-Policy header.
    - Marks the session and CSRF cookies ``Secure`` on HTTPS requests, so the
      same install works on plain http://localhost and behind a TLS proxy.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "HTTP_X_FORWARDED_PROTO" in request.META and not is_trusted_proxy(request.META.get("REMOTE_ADDR") or ""):
            del request.META["HTTP_X_FORWARDED_PROTO"]
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            admin = request.path_info.startswith("/admin/")
            response["Content-Security-Policy"] = ADMIN_CONTENT_SECURITY_POLICY if admin else CONTENT_SECURITY_POLICY
        if request.is_secure():
            for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
                if name in response.cookies:
                    response.cookies[name]["secure"] = True
        return response

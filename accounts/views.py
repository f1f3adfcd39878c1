"""Login, logout and password change (product.md §9, §8 ``PUT /api/password``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import admin
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from accounts import throttle
from accounts.auth import api_auth, basic_cache, error, locked_out
from quotas.api import json_body, methods

View = Callable[..., HttpResponse]

LOCKED_MESSAGE = "Too many failed sign-in attempts from your address. Try again in {minutes} minutes."


def throttled(template: str) -> Callable[[View], View]:
    """Answer 429 + Retry-After to a login POST from a locked-out address.

    Checked before the credentials, so the right password is refused too,
    and after a failed one, so the failure that locks the address says so.
    Failures and successes are counted by accounts.throttle's signal receivers.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if request.method != "POST":
                return view(request, *args, **kwargs)
            address = throttle.address_of(request)
            seconds = throttle.locked_for(address)
            if seconds is None:
                response = view(request, *args, **kwargs)
                if response.status_code != 200:
                    return response  # signed in (a redirect)
                seconds = throttle.locked_for(address)  # did this failure lock the address?
                if seconds is None:
                    return response
            return _locked_page(request, template, seconds)

        return wrapped

    return decorator


def _locked_page(request: HttpRequest, template: str, seconds: int) -> HttpResponse:
    form = AuthenticationForm(request, initial={"username": request.POST.get("username", "")})
    form.cleaned_data = {}  # an unbound form, never validated: that would try the password
    form.add_error(None, LOCKED_MESSAGE.format(minutes=max(1, -(-seconds // 60))))
    context = {"form": form, "next": request.POST.get("next", ""), "locked_out": True, "retry_after": seconds}
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(seconds)
    return response


# GET and POST only: LoginView would treat PUT as POST.
login = require_http_methods(["GET", "HEAD", "POST"])(
    throttled("accounts/login.html")(
        auth_views.LoginView.as_view(template_name="accounts/login.html", redirect_authenticated_user=True)
    )
)

logout = auth_views.LogoutView.as_view()  # POST only (Django 5), to LOGOUT_REDIRECT_URL


@never_cache
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
@throttled("admin/login.html")
def admin_login(request: HttpRequest) -> HttpResponse:
    """Django admin's own login page, under the same throttle as /login/."""
    return admin.site.login(request)


@methods("PUT")
@api_auth
def password(request: HttpRequest) -> HttpResponse:
    """Change the caller's password; the caller's session survives, every other one ends.

    A wrong current password is 403, never 401: the dashboard treats 401 as
    "signed out" and must show this error instead. It counts as a failed
    login, so the endpoint cannot be used to guess the password either.
    """
    address = throttle.address_of(request)
    seconds = throttle.locked_for(address)
    if seconds is not None:
        return locked_out(seconds)
    try:
        body = json_body(request)
    except ValueError as e:
        return error(str(e), 400)
    if not isinstance(body, dict):
        return error('the body must be a JSON object: {"current_password": …, "new_password": …}', 400)
    current, new = body.get("current_password"), body.get("new_password")
    if not isinstance(current, str) or not isinstance(new, str) or not current or not new:
        return error("current_password and new_password are required", 400)
    user = request.user
    try:
        validate_password(new, user)
    except ValidationError as e:
        return error(" ".join(e.messages), 400)
    if not user.check_password(current):
        throttle.record_failure(address)
        return error("the current password is incorrect", 403)
    user.set_password(new)
    user.save()
    basic_cache.forget_user(user.pk)
    if request.auth_method == "session":
        update_session_auth_hash(request, user)
    return HttpResponse(status=204)

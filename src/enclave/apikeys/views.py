"""API-key pages under /app/api-keys/: list, create (token shown once), roll, revoke, and
the account's key-age policy. Thin: parse, call access/actions, render.

Creating and rolling show a token, so they need recent re-authentication and their
result pages are ``Cache-Control: no-store`` (never cached, never redirected to — the
token is in no URL). Revoking is never made harder than one click. What each route needs
(permission, re-authentication) is its entry in ``access.endpoints``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers

from enclave.access.permissions import Permission
from enclave.access.scopes import CEILINGS, SCOPE_DESCRIPTIONS
from enclave.apikeys import access, actions
from enclave.apikeys.models import BROWSER
from enclave.core import clock
from enclave.core.views import render_error_page
from enclave.events import tracker


def _errors(exc: ValidationError) -> dict[str, list[str]]:
    return exc.message_dict if hasattr(exc, "error_dict") else {"form": exc.messages}


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
    return response


def _row(key, now, max_age_days: int) -> dict:
    state = key.state(now)
    live = state in ("active", "grace")
    return {"key": key, "state": state, "age_days": key.age_days(now),
            "too_old": live and key.age_days(now) > max_age_days, "live": live,
            "expires_soon": live and (key.expires_at - now).days < 14}


def key_list(request: HttpRequest) -> HttpResponse:
    ctx = request.principal
    now = clock.now()
    policy = actions.policy_of(ctx.account_id)
    rows = [_row(k, now, policy.max_age_days) for k in access.keys_of(ctx)]
    return render(request, "apikeys/list.html", {
        "ctx": ctx, "rows": rows, "policy": policy,
        "flagged": [r for r in rows if r["too_old"]],
        "exposed": [r for r in rows if r["state"] == "exposed"],
        "can_set_policy": ctx.can(Permission.ACCOUNT_MANAGE)})


def _form_context(ctx, data=None, errors=None) -> dict:
    data = data or {}
    return {"ctx": ctx, "scopes": SCOPE_DESCRIPTIONS.items(), "ceilings": CEILINGS,
            "chosen_scopes": data.get("scopes", []),
            "ceiling": data.get("role_ceiling") or actions.default_ceiling(ctx.perms),
            "name": data.get("name", ""), "allowed_ips": data.get("allowed_ips", ""),
            "expires_days": data.get("expires_days", ""),
            "kind": data.get("kind") or "server",
            "allowed_origins": data.get("allowed_origins", ""),
            "require_consent": data.get("require_consent", False),
            "identify_mode": data.get("identify_mode") or "link", "errors": errors or {}}


def _created(request, token: str, key, rolled=None) -> HttpResponse:
    snippet = (tracker.snippet(settings.CONFIG.public_url, token,
                               require_consent=key.require_consent)
               if key.kind == BROWSER else None)
    return _no_store(render(request, "apikeys/created.html",
                            {"token": token, "key": key, "rolled": rolled,
                             "snippet": snippet}, status=201))


def key_create(request: HttpRequest) -> HttpResponse:
    ctx = request.principal
    if request.method == "GET":
        return render(request, "apikeys/form.html", _form_context(ctx))
    data = {"name": request.POST.get("name", ""), "scopes": request.POST.getlist("scopes"),
            "role_ceiling": request.POST.get("role_ceiling", ""),
            "allowed_ips": request.POST.get("allowed_ips", ""),
            "expires_days": request.POST.get("expires_days", ""),
            "kind": request.POST.get("kind", "server"),
            "allowed_origins": request.POST.get("allowed_origins", ""),
            "require_consent": request.POST.get("require_consent") == "on",
            "identify_mode": request.POST.get("identify_mode", "")}
    browser = data["kind"] == BROWSER
    try:
        token, key = actions.do_create_api_key(
            ctx.account, name=data["name"], scopes=[] if browser else data["scopes"],
            role_ceiling=data["role_ceiling"] or None, allowed_ips=data["allowed_ips"],
            expires_days=data["expires_days"] or None, kind=data["kind"],
            allowed_origins=data["allowed_origins"] if browser else (),
            require_consent=browser and data["require_consent"],
            identify_mode=data["identify_mode"] if browser else None, actor=ctx,
            request=request)
    except ValidationError as exc:
        return render(request, "apikeys/form.html", _form_context(ctx, data, _errors(exc)),
                      status=422)
    return _created(request, token, key)


def key_roll(request: HttpRequest, public_id: str) -> HttpResponse:
    ctx = request.principal
    key = access.access_key(ctx, public_id)
    try:
        token, successor = actions.do_roll_api_key(
            key, actor=ctx, grace_hours=request.POST.get("grace_hours") or None,
            request=request)
    except ValidationError as exc:
        messages = " ".join(m for ms in _errors(exc).values() for m in ms)
        return render_error_page(request, 422, "Cannot roll this key", messages)
    except actions.ApiKeyRuleError as exc:
        return render_error_page(request, 409, "Cannot roll this key", str(exc))
    return _created(request, token, successor, rolled=key)


def key_revoke(request: HttpRequest, public_id: str) -> HttpResponse:
    ctx = request.principal
    key = access.access_key(ctx, public_id)
    actions.do_revoke_api_key(key, actor=ctx, request=request)
    return redirect("/app/api-keys/")


def key_policy(request: HttpRequest) -> HttpResponse:
    ctx = request.principal
    try:
        actions.do_set_api_key_policy(ctx.account, max_age_days=request.POST.get(
            "max_age_days", ""), actor=ctx, request=request)
    except ValidationError as exc:
        messages = " ".join(m for ms in _errors(exc).values() for m in ms)
        return render_error_page(request, 422, "Key-age policy not changed", messages)
    return redirect("/app/api-keys/")

"""Sign-in, sign-out, failed sign-in and sign-in lockouts are audited like any
other action.

A failed sign-in for a username that exists is recorded against that person
(their ``ref_id`` and tenant), so their tenant admin sees attempts on their
accounts; one for an unknown username is a platform-level entry (no tenant),
seen only by super admins, so a tenant's screen never lists strangers' guesses.
The password is never recorded.
"""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from dmobs.audit import audit_log
from dmobs.observability.logger import TENANT_SESSION_KEY, get_logger
from dmobs.security import client_ip
from dmobs.vocabulary import MAX_USERNAME


def _client_address(request) -> str | None:
    if request is None:
        return None
    return client_ip(request)


def _attempted(username: str) -> tuple[str | None, str, str]:
    """(tenant ref, actor id, actor name) for a sign-in attempt on ``username``."""
    user_model = get_user_model()
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
    if user is None:
        # Field limits of audit_logs: actorId 64, actorName 200 (usernames may be 150).
        return None, f"unknown:{username[:56]}", username[:200]
    return user.sole_tenant_ref(), user.ref_id, user.get_full_name() or user.get_username()


@receiver(user_logged_in, dispatch_uid="dmobs_audit_logged_in")
def audit_logged_in(sender, request, user, **kwargs):
    audit_log(
        tenant_id=user.sole_tenant_ref(),
        actor_type="human",
        actor_id=user.ref_id,
        actor_name=user.get_full_name() or user.get_username(),
        action="logged_in",
        resource_type="session",
        resource_id=user.ref_id,
        resource_name=user.get_username(),
        description=f"{user.get_username()} signed in",
        after={"address": _client_address(request)},
    )


@receiver(user_logged_out, dispatch_uid="dmobs_audit_logged_out")
def audit_logged_out(sender, request, user, **kwargs):
    if user is None:
        return
    audit_log(
        tenant_id=user.sole_tenant_ref(),
        actor_type="human",
        actor_id=user.ref_id,
        actor_name=user.get_full_name() or user.get_username(),
        action="logged_out",
        resource_type="session",
        resource_id=user.ref_id,
        resource_name=user.get_username(),
        description=f"{user.get_username()} signed out",
    )


@receiver(user_login_failed, dispatch_uid="dmobs_audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username") or "")[:MAX_USERNAME] or "(blank)"
    tenant_id, actor_id, actor_name = _attempted(username)
    # django-axes refused the attempt without checking the password: sign-in is
    # paused. (On the failure that starts a pause axes has counted the attempt,
    # so axes_failures_since_start is set; on a refused one it is not.)
    refused = bool(getattr(request, "axes_locked_out", False)) and (
        getattr(request, "axes_failures_since_start", None) is None
    )
    description = f"Failed sign-in for {username!r}"
    if refused:
        description += " (refused: sign-in is paused after repeated failures)"
    audit_log(
        tenant_id=tenant_id,
        actor_type="human",
        actor_id=actor_id,
        actor_name=actor_name,
        action="failed",
        resource_type="session",
        resource_id=username[:128],
        resource_name=username,
        description=description,
        after={"address": _client_address(request), "refused": refused},
    )


@receiver(user_locked_out, dispatch_uid="dmobs_audit_locked_out")
def audit_locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    # django-axes sends this on the failure that starts a lockout and again on
    # every refused attempt during it; the refused ones are already "failed"
    # entries, so record the lockout once: on the request that counted a failure.
    if getattr(request, "axes_failures_since_start", None) is None:
        return
    username = str(username or "")[:MAX_USERNAME] or "(blank)"
    tenant_id, actor_id, actor_name = _attempted(username)
    audit_log(
        tenant_id=tenant_id,
        actor_type="system",
        actor_id="axes",
        actor_name="Sign-in protection",
        action="locked_out",
        resource_type="session",
        resource_id=username[:128],
        resource_name=username,
        description=(
            f"Sign-in paused for {username!r} from {ip_address or 'an unknown address'} "
            f"after {request.axes_failures_since_start} failed attempts"
        ),
        after={
            "address": ip_address,
            "failures": request.axes_failures_since_start,
            "userId": None if actor_id.startswith("unknown:") else actor_id,
        },
    )


log = get_logger("dmobs.tracing")


def remember_tenant_at_login(sender, request, user, **kwargs) -> None:
    """``user_logged_in`` receiver: keep the user's only tenant in the session,
    so log lines and spans name it without a query on later requests."""
    if request is None or not hasattr(request, "session"):
        return
    try:
        request.session[TENANT_SESSION_KEY] = user.sole_tenant_ref()
    except Exception:  # noqa: BLE001 - telemetry must never fail a sign-in
        log.warning("could not look up the tenant of a signed-in user", exc_info=True)

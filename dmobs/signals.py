"""Sign-in, sign-out and failed sign-in are audited like any other action."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from dmobs.audit import audit_log, tenant_ref_for_user

MAX_USERNAME = 150


def _client_address(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR")


@receiver(user_logged_in, dispatch_uid="dmobs_audit_logged_in")
def audit_logged_in(sender, request, user, **kwargs):
    audit_log(
        tenant_id=tenant_ref_for_user(user),
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
        tenant_id=tenant_ref_for_user(user),
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
    audit_log(
        tenant_id=None,
        actor_type="human",
        actor_id=f"unknown:{username}",
        actor_name=username,
        action="failed",
        resource_type="session",
        resource_id=username,
        resource_name=username,
        description=f"Failed sign-in for {username!r}",
        after={"address": _client_address(request)},
    )

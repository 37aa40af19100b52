"""Who may see and who may act in the inbox: the operators' roles, as the REST API has them.

Only staff reach Django admin (``admin.site.admin_view``); among them the role groups decide:
a staff account in ``operators-readonly`` (and not in ``agents``, not a superuser) only reads;
agents and admins (superusers, staff in no role group, as the API maps staff) also act.
Views check this on every POST, not only by hiding buttons.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from whatsappcrm_backend.api import AGENT_GROUP, READ_ONLY_GROUP, Role

__all__ = ["agents", "can_act", "inbox_role"]


def inbox_role(user: Any) -> Role:
    """The user's role in the inbox (cached on the user object for the request)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active or not user.is_staff:
        return Role.NONE
    cached = getattr(user, "_inbox_role", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        role = Role.ADMIN
    else:
        groups = set(user.groups.values_list("name", flat=True))
        role = Role.AGENT if AGENT_GROUP in groups else Role.READ_ONLY if READ_ONLY_GROUP in groups else Role.ADMIN
    user._inbox_role = role
    return role


def can_act(user: Any) -> bool:
    """Agents and admins answer, take over, assign, note and label; read-only staff look."""
    return inbox_role(user) >= Role.AGENT


def agents() -> QuerySet:
    """The users a conversation may be assigned to: active staff who may act."""
    users = get_user_model().objects
    readonly = users.filter(groups__name=READ_ONLY_GROUP).values("pk")
    agent = users.filter(groups__name=AGENT_GROUP).values("pk")
    return (
        users.filter(is_active=True, is_staff=True)
        .exclude(Q(is_superuser=False) & Q(pk__in=readonly) & ~Q(pk__in=agent))
        .order_by("username")
    )

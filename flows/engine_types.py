"""The records :func:`flows.engine.advance` takes and returns, and the action contract.

In: the user's message (:class:`Inbound`), the contact (:class:`ContactView`), the stored
:class:`Session` and the :class:`EngineSettings` (texts, global commands, limits). Out: an
:class:`EngineResult`. Other apps register actions as ``ActionCall -> ActionResult``
callables (:data:`ActionRegistry`). All frozen dataclasses: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFAULT_GLOBAL_COMMANDS",
    "ActionCall",
    "ActionRegistry",
    "ActionResult",
    "CommandKind",
    "ContactView",
    "EngineResult",
    "EngineSettings",
    "GlobalCommand",
    "Inbound",
    "Session",
]


@dataclass(frozen=True)
class Inbound:
    """One message from the user, reduced to what flows can react to.

    ``message_type`` is the Cloud API type: "text", "interactive" (a tapped reply button or
    list row of a message we sent), "button" (a template quick-reply), "location", "image",
    ... ``reply_id`` is the tapped id (interactive) or payload (button).
    """

    message_type: str
    text: str | None = None
    reply_id: str | None = None
    reply_title: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    media_id: str | None = None
    wamid: str | None = None

    @classmethod
    def from_text(cls, text: str, *, wamid: str | None = None) -> Inbound:
        return cls(message_type="text", text=text, wamid=wamid)

    @classmethod
    def from_reply(cls, reply_id: str, title: str | None = None, *, wamid: str | None = None) -> Inbound:
        """A tapped reply button or list row."""
        return cls(message_type="interactive", reply_id=reply_id, reply_title=title, wamid=wamid)

    @classmethod
    def from_location(cls, latitude: float, longitude: float, *, wamid: str | None = None) -> Inbound:
        return cls(message_type="location", latitude=latitude, longitude=longitude, wamid=wamid)

    @classmethod
    def from_media(
        cls, media_type: str, media_id: str, caption: str | None = None, *, wamid: str | None = None
    ) -> Inbound:
        return cls(message_type=media_type, media_id=media_id, text=caption, wamid=wamid)


@dataclass(frozen=True)
class ContactView:
    """The contact as templates and actions see it (``{{ contact.name }}``, ``{{ contact.city }}``)."""

    wa_id: str
    name: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Session:
    """A conversation waiting at a question step (a ContactFlowState row).

    ``variables`` must stay JSON-serialisable; treat it as read-only (the engine copies it).
    ``updated_at`` is when the engine produced this state; with ``settings.session_timeout``
    it lets the engine recognise a session the expiry job has not cleared yet.
    """

    flow: str
    step: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    awaiting_reply: bool = True
    updated_at: datetime | None = None


@dataclass(frozen=True)
class EngineResult:
    """What to store and send. ``replies`` are rendered message specs, in sending order."""

    session: Session | None
    replies: tuple[dict[str, Any], ...] = ()
    contact_updates: Mapping[str, Any] = field(default_factory=dict)
    handover: bool = False
    events: tuple[str, ...] = ()
    # The steps run and transitions taken, in order ("step main_menu.menu (question)",
    # "transition main_menu.menu -> help (reply_id=help)"): what a flow author debugs with.
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActionCall:
    """What a registered action receives. ``variables`` is a copy: mutating it changes nothing."""

    name: str
    inputs: Mapping[str, Any]
    variables: Mapping[str, Any]
    contact: ContactView
    now: datetime | None = None


@dataclass(frozen=True)
class ActionResult:
    """What an action returns: variables to set, replies to send, contact fields to update.

    With ``save_as`` in the step config, ``variables`` is stored under that one name;
    otherwise its keys are merged into the flow's variables. Everything must be JSON data.
    """

    variables: Mapping[str, Any] = field(default_factory=dict)
    replies: tuple[Mapping[str, Any], ...] = ()
    contact_updates: Mapping[str, Any] = field(default_factory=dict)


ActionRegistry = Mapping[str, Callable[[ActionCall], ActionResult]]
"""Action name (e.g. "football.list_fixtures") -> callable, registered by other apps."""


class CommandKind(StrEnum):
    START_FLOW = "start_flow"  # e.g. "menu": start a flow (the main menu when ``flow`` is None)
    END = "end"  # e.g. "cancel": end the session and say ``text``
    HANDOVER = "handover"  # e.g. "agent": end the session and ask for a human


@dataclass(frozen=True)
class GlobalCommand:
    kind: CommandKind
    flow: str | None = None
    text: str | None = None


DEFAULT_GLOBAL_COMMANDS: Mapping[str, GlobalCommand] = MappingProxyType(
    {
        "menu": GlobalCommand(CommandKind.START_FLOW),
        "help": GlobalCommand(CommandKind.START_FLOW, flow="help"),
        "human": GlobalCommand(CommandKind.START_FLOW, flow="human"),
        "agent": GlobalCommand(CommandKind.START_FLOW, flow="human"),
        "cancel": GlobalCommand(CommandKind.END, text="Okay, I've cancelled that. Send *menu* whenever you need me."),
        "stop": GlobalCommand(CommandKind.END, text="Okay, I've stopped. Send *menu* whenever you need me."),
    }
)


@dataclass(frozen=True)
class EngineSettings:
    """Engine behaviour and the fixed texts it sends (all texts are templates)."""

    main_menu_flow: str = "main_menu"
    global_commands: Mapping[str, GlobalCommand] = field(default_factory=lambda: DEFAULT_GLOBAL_COMMANDS)
    fallback_text: str = "Sorry, I didn't quite catch that. Here's what I can help with 👇"
    unavailable_text: str = "Sorry, that option isn't available right now. Here's what I can help with 👇"
    session_expired_text: str = "⏱️ Our previous conversation timed out, so let's start again."
    finished_reply_text: str = "That conversation has already finished. Here's what I can help with 👇"
    """Said when a button of a flow that ended normally is tapped (then the main menu)."""
    error_text: str = (
        "Sorry, something went wrong on our side 😕 Please try again in a moment, or send *menu* to start over."
    )
    loop_text: str = "Sorry, I got a bit tangled up there 😅 Send *menu* to start over."
    gave_up_text: str = "Let's leave it there for now. Send *menu* whenever you'd like to try again."
    handover_text: str = "I'm connecting you with a member of our team. They'll reply here shortly 🙋"
    max_auto_steps: int = 25
    default_max_retries: int = 2
    session_timeout: timedelta | None = timedelta(minutes=5)
    ignored_message_types: frozenset[str] = frozenset({"reaction", "system"})
    """Inbound types that never get a reply (an emoji reaction is not a request for the menu)."""

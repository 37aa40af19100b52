"""A campaign's template variables: the mapping checked against the template before the
campaign may start, and each recipient's spec built from it at send time.

The check at start fills every field-mapped slot with a sample, so a slot missing from the
mapping, a slot the template does not have, a fixed value that is empty or too long, a
field that is not a contact field, an unapproved template or a template of another number
refuse the campaign. What only a recipient's own data can break (their ``name`` is empty,
say) fails that recipient alone at send time, with the slot named in its error; a mapping
may give a ``fallback`` for such a field ({"field": "name", "fallback": "there"}).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from campaigns.models import Campaign
from campaigns.services.segments import contact_value, validate_field_name
from conversations.models import Contact
from meta_integration.templates import TemplateVariablesError

__all__ = ["CampaignError", "campaign_spec", "check_campaign", "quick_reply_indexes"]

_SAMPLE_TEXT = "Sample"
_SAMPLE_MEDIA = "https://example.com/sample.jpg"


class CampaignError(ValueError):
    """A campaign cannot start as it is; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _mapping_problem(slot: str, mapping: Any) -> str | None:
    if not isinstance(mapping, Mapping):
        return 'must be {"field": "<contact field>"} or {"value": "<text>"}'
    keys = set(mapping)
    if keys == {"value"} or keys == {"field"} or keys == {"field", "fallback"}:
        if "field" in keys:
            return validate_field_name(str(mapping["field"]))
        return None
    return f'must have "field" (and optionally "fallback") or "value", got keys {sorted(keys)}'


def quick_reply_indexes(components: Any) -> list[int]:
    """Indexes of the template's QUICK_REPLY buttons (the ones a flow can start from)."""
    buttons = next((c for c in components or [] if str(c.get("type", "")).upper() == "BUTTONS"), None)
    return [i for i, b in enumerate((buttons or {}).get("buttons", []) or [])
            if str(b.get("type", "")).upper() == "QUICK_REPLY"]


def _values(campaign: Campaign, contact: Contact | None) -> dict[str, str]:
    slots = {slot.key: slot for slot in campaign.template.slots()}
    values: dict[str, str] = {}
    for key, mapping in (campaign.variables or {}).items():
        if "value" in mapping:
            values[key] = "" if mapping["value"] is None else str(mapping["value"])
        elif contact is None:  # the check at start: any non-empty value of the slot's kind
            slot = slots.get(key)
            values[key] = _SAMPLE_MEDIA if slot is not None and slot.kind != "text" else _SAMPLE_TEXT
        else:
            values[key] = contact_value(contact, str(mapping["field"])) or str(mapping.get("fallback") or "")
    return values


def campaign_spec(campaign: Campaign, contact: Contact | None = None) -> dict[str, Any]:
    """The template spec for ``contact`` (or a sample one); TemplateVariablesError names the slot."""
    spec = campaign.template.build_spec(_values(campaign, contact))
    if campaign.flow_id is not None:
        keyword = str((campaign.flow.trigger_keywords or [""])[0])
        spec.setdefault("components", [])
        for index in quick_reply_indexes(campaign.template.components):
            spec["components"].append({
                "type": "button", "sub_type": "quick_reply", "index": str(index),
                "parameters": [{"type": "payload", "payload": keyword}],
            })
    return spec


def check_campaign(campaign: Campaign) -> None:
    """Refuse (CampaignError) a campaign whose template, mapping or flow cannot work."""
    template = campaign.template
    if template.app_config_id != campaign.app_config_id:
        raise CampaignError("template", f"{template} belongs to another business number than {campaign.app_config}")
    if not template.is_sendable:
        raise CampaignError("template", f"{template} is {template.get_status_display().lower()}, not approved")
    if not isinstance(campaign.variables, Mapping):
        raise CampaignError("variables", "must be an object keyed by slot (body.1, header.media, ...)")
    for key, mapping in campaign.variables.items():
        problem = _mapping_problem(key, mapping)
        if problem:
            raise CampaignError(f"variables.{key}", problem)
    if campaign.flow_id is not None:
        flow = campaign.flow
        if not flow.active or not flow.trigger_keywords:
            raise CampaignError("flow", f"flow {flow.name!r} must be active and have a trigger keyword to start from")
        if not quick_reply_indexes(template.components):
            raise CampaignError("flow", f"{template} has no quick-reply button to start flow {flow.name!r} from")
    try:
        campaign_spec(campaign)
    except TemplateVariablesError as exc:
        raise CampaignError(f"variables.{exc.field.removeprefix('template.')}", exc.message) from None

"""Helpers of the campaign tests: a business number, an approved template, contacts
in bulk with a label, a segment and a campaign over them."""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from campaigns.models import Campaign, Segment
from conversations.models import Contact, Label
from meta_integration.models import MessageTemplate, MessagingTier, MetaAppConfig, TemplateStatus

TEMPLATE_COMPONENTS = [
    {"type": "HEADER", "format": "TEXT", "text": "Weekend fixtures"},
    {"type": "BODY", "text": "Hi {{1}}, {{2}} kicks off this weekend. Reply STOP to opt out.",
     "example": {"body_text": [["Tendai", "Arsenal v Chelsea"]]}},
    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Show odds"}]},
]
FIXTURE = "Dynamos v Highlanders"


def make_template(config: MetaAppConfig, *, name: str = "weekend_fixtures", components=None,
                  status: str = TemplateStatus.APPROVED, fake=None) -> MessageTemplate:
    """A synced template; ``fake`` (the fake Graph API) gets it too, as Meta would have it."""
    template = MessageTemplate.objects.create(
        app_config=config, template_id=str(random.randint(10**14, 10**15)), name=name, language="en_US",
        category="MARKETING", status=status, components=components or TEMPLATE_COMPONENTS,
    )
    if fake is not None:
        give_fake(fake, template)
    return template


def give_fake(fake, template: MessageTemplate) -> None:
    """The fake Graph API knows ``template`` as Meta would (it refuses sends of unknown ones)."""
    fake.templates.add({"name": template.name, "language": template.language, "status": template.status,
                        "category": template.category, "components": template.components})


def make_contacts(config: MetaAppConfig, count: int, *, label: Label | None = None, prefix: str | None = None,
                  **fields) -> list[Contact]:
    """``count`` contacts who wrote to ``config`` an hour ago, named "Fan <n>", with ``label``."""
    prefix = prefix or str(random.randint(10**5, 10**6 - 1))
    now = timezone.now()
    contacts = Contact.objects.bulk_create([
        Contact(wa_id=f"2637{prefix}{index:04d}", name=f"Fan {index}", profile_name=f"Fan {index}",
                app_config=config, last_inbound_at=now - timedelta(hours=1), **fields)
        for index in range(count)
    ])
    if label is not None:
        Contact.labels.through.objects.bulk_create(
            [Contact.labels.through(contact_id=c.pk, label_id=label.pk) for c in contacts])
    return contacts


def make_campaign(config: MetaAppConfig, template: MessageTemplate, segment: Segment, **fields) -> Campaign:
    fields.setdefault("variables", {"body.1": {"field": "name"}, "body.2": {"value": FIXTURE}})
    return Campaign.objects.create(name=fields.pop("name", "Weekend fixtures"), app_config=config,
                                   template=template, segment=segment, **fields)


def labelled_segment(name: str = "bettors") -> tuple[Label, Segment]:
    label = Label.objects.create(name=name)
    segment = Segment.objects.create(name=f"{name} segment")
    segment.labels.add(label)
    return label, segment


def unlimited(config: MetaAppConfig) -> MetaAppConfig:
    config.messaging_tier = MessagingTier.UNLIMITED
    config.save(update_fields=["messaging_tier"])
    return config

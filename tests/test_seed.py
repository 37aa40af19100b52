"""The development seed (``manage.py devstack_seed``, run by every ``./scripts/run``) keeps
what operators changed: it creates what is missing and never overwrites what exists;
``--reset`` puts the shipped versions back."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from flows.models import Flow, FlowStep

pytestmark = pytest.mark.django_db

EDITED_BODY = "Pick a league (edited by an operator)"


def seed(*args: str) -> str:
    out = StringIO()
    call_command("devstack_seed", *args, stdout=out)
    return out.getvalue()


def edit_pick_league() -> FlowStep:
    """What saving the step's change form in admin does: the model's save()."""
    step = FlowStep.objects.get(flow__name="fixtures", name="pick_league")
    step.config = {**step.config, "prompt": {**step.config["prompt"], "body": EDITED_BODY}}
    step.save()
    return step


def pick_league_body() -> str:
    return FlowStep.objects.get(flow__name="fixtures", name="pick_league").config["prompt"]["body"]


def test_seeding_again_keeps_an_operators_edit_of_a_default_flow_and_reset_restores_it(settings):
    settings.DEBUG = True
    seed()
    shipped = pick_league_body()
    assert shipped != EDITED_BODY
    edit_pick_league()

    output = seed()
    assert pick_league_body() == EDITED_BODY
    assert "0 created, 0 updated" in output and "1 kept as edited" in output

    output = seed("--reset")
    assert pick_league_body() == shipped
    assert "1 updated" in output


def test_seeding_creates_a_default_flow_that_is_missing_and_leaves_the_others(settings):
    settings.DEBUG = True
    seed()
    edit_pick_league()
    Flow.objects.get(name="help").delete()

    seed()
    assert Flow.objects.filter(name="help").exists()
    assert pick_league_body() == EDITED_BODY

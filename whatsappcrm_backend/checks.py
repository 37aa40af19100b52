"""Django system checks for the Celery topology (run by ``manage.py check``)."""

from __future__ import annotations

from typing import Any

from django.core import checks


@checks.register("celery")
def celery_routing_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from whatsappcrm_backend.routing_check import project_problems

    return [
        checks.Error(problem.message, id=problem.code, hint="See whatsappcrm_backend/topology.py")
        for problem in project_problems()
    ]

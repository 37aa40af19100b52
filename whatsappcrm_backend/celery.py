"""The Celery application, and the decorator every project task is declared with.

No gevent monkey-patching here: ``celery worker --pool=gevent`` patches the process
itself before it imports this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.result import AsyncResult

from whatsappcrm_backend import topology

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whatsappcrm_backend.settings")

app = Celery("whatsappcrm_backend")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _broker_url() -> str:
    return app.conf.broker_url


def priority_number(priority: topology.Priority) -> int:
    """The broker's number for a named priority (Redis: 0 first; RabbitMQ: 9 first)."""
    return topology.broker_priority(priority, _broker_url())


def route_task(name: str, args: Any, kwargs: Any, options: dict, task: Any = None, **kw: Any) -> dict | None:
    """Celery router built from the topology table: explicit routes, then the fallbacks.

    It also supplies the named priority, so a task published by name (``enqueue("flows.process_message")``)
    still carries its priority instead of landing in Redis' top tier.
    """
    if name in topology.TASKS:
        route = topology.TASKS[name]
        return {"queue": route.queue, "priority": priority_number(route.priority)}
    queue = topology.queue_for(name)
    if queue is not None:
        return {"queue": queue}
    return None


def project_task(name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """Declare a project task: its queue, priority and time limits come from the topology table.

    ``@project_task("flows.process_message", bind=True)`` fails at import time if the
    table has no route for the name, so a task can never be registered unrouted.
    """
    route = topology.route_for(name)
    defaults: dict[str, Any] = {
        "name": name,
        "queue": route.queue,
        "priority": priority_number(route.priority),
        "soft_time_limit": route.soft_time_limit,
        "time_limit": route.time_limit,
        "max_retries": route.max_retries,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "ignore_result": True,
    }
    defaults.update(options)
    return app.task(**defaults)


def enqueue(
    task: Task | str,
    *args: Any,
    kwargs: dict[str, Any] | None = None,
    priority: topology.Priority | None = None,
    **options: Any,
) -> AsyncResult:
    """Publish a project task: the task object, or its name where the caller's app may not
    import the task's (conversations names ``flows.process_message``; a service names the
    task module that imports it). Either way the queue and named priority are the topology
    table's (the task's own options, or ``route_task`` for a name), unless ``priority``
    names another. ``options`` are Celery's publish options (countdown, retry_policy, ...).
    """
    if priority is not None:
        options["priority"] = priority_number(priority)
    if isinstance(task, str):
        return app.send_task(task, args=args, kwargs=kwargs, **options)
    return task.apply_async(args=args, kwargs=kwargs, **options)

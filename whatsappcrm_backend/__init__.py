"""Project package: settings, the Celery app, the Celery topology and URLs."""

from whatsappcrm_backend.celery import app as celery_app

__all__ = ("celery_app",)

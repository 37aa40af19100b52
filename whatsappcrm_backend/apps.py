from django.apps import AppConfig

__all__ = ["ADMIN_SITE_URL", "ProjectConfig", "brand_admin"]


class ProjectConfig(AppConfig):
    """The project package as an app, for its system checks, commands and Beat sync."""

    name = "whatsappcrm_backend"
    verbose_name = "WhatsApp CRM"

    def ready(self) -> None:
        from django.apps import apps as django_apps
        from django.db.models.signals import post_migrate

        from whatsappcrm_backend import checks  # noqa: F401  (registers the system checks)
        from whatsappcrm_backend.api import ensure_role_groups
        from whatsappcrm_backend.beat import connect_beat_sync, sync_after_migrate

        # post_migrate is only sent for apps with models, so hang these on apps that have them.
        post_migrate.connect(
            sync_after_migrate, sender=django_apps.get_app_config("django_celery_beat"), dispatch_uid="beat-sync"
        )
        post_migrate.connect(
            ensure_role_groups, sender=django_apps.get_app_config("auth"), dispatch_uid="api-role-groups"
        )
        connect_beat_sync()

        from whatsappcrm_backend.dbpool import connect_idle_check

        connect_idle_check()

        from whatsappcrm_backend.logging import connect_task_logging
        from whatsappcrm_backend.metrics import connect_task_metrics
        from whatsappcrm_backend.shutdown import connect_shutdown_deadline

        connect_task_metrics()
        connect_task_logging()
        connect_shutdown_deadline()
        brand_admin()


ADMIN_SITE_URL = "/admin/inbox/"


def brand_admin() -> None:
    """Name the admin after the product, and send its VIEW SITE link to the operators' inbox:
    the project has no public site, so Django's default ("/") was a 404."""
    from django.contrib import admin

    admin.site.site_header = "WhatsApp CRM"
    admin.site.site_title = "WhatsApp CRM admin"
    admin.site.index_title = "Operations"
    admin.site.site_url = ADMIN_SITE_URL

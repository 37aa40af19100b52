"""WSGI entry point (gunicorn whatsappcrm_backend.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whatsappcrm_backend.settings")
application = get_wsgi_application()

"""WSGI entry point of the floor's bare Django (``gunicorn bench.floor_wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.floor_web"
application = get_wsgi_application()

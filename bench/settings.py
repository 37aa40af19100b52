"""Settings for the benchmark's web server only: the project's, with the floor views mounted.

The project's settings take everything from the environment except ``ROOT_URLCONF``; the
benchmark starts gunicorn with ``DJANGO_SETTINGS_MODULE=bench.settings`` so the floor views
of ``bench/urls.py`` exist on the benchmark's server and nowhere else. Workers and Beat run
with the project's own settings.
"""

from whatsappcrm_backend.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

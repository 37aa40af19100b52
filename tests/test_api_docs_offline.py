"""The API documentation pages work without internet: every asset they load is ours.

Swagger UI (``/api/docs/``) and ReDoc (``/api/redoc/``) used to come from a CDN, so the pages
were blank on a machine without internet. Each page is parsed like a browser would: every
``src``/``href`` it loads must be a path on this server (no ``http(s)://`` or ``//host``) and
must answer 200 with content, served from the static files (drf-spectacular-sidecar) through
Django's staticfiles finders.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.views import serve
from django.test import Client
from django.urls import include, path, re_path

urlpatterns = [
    path("api/", include("whatsappcrm_backend.api")),
    # what runserver / the devstack serve in development, through the staticfiles finders
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]

EXTERNAL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}""")


class AssetCollector(HTMLParser):
    """Every URL the page makes the browser fetch: scripts, stylesheets, icons, images, preconnects."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe") and values.get("src"):
            self.assets.append(values["src"] or "")
        if tag == "link" and values.get("href"):
            self.assets.append(values["href"] or "")
        if tag == "redoc" and values.get("spec-url"):
            self.assets.append(values["spec-url"] or "")
        self._in_script = tag == "script" and not values.get("src")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_scripts.append(data)


def page_assets(client: Client, url: str) -> AssetCollector:
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    collector = AssetCollector()
    collector.feed(response.content.decode())
    return collector


@pytest.mark.parametrize(("url", "expected"), [
    ("/api/docs/", ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css")),
    ("/api/redoc/", ("redoc.standalone.js",)),
])
def test_docs_page_loads_only_assets_this_server_serves(url, expected):
    client = Client()
    page = page_assets(client, url)

    external = [asset for asset in page.assets if urlsplit(asset).scheme or urlsplit(asset).netloc]
    assert external == [], f"{url} loads assets from elsewhere: {external}"
    for script in page.inline_scripts:  # the Swagger UI config: no validator badge, no CDN
        assert not EXTERNAL.findall(script), EXTERNAL.findall(script)
    names = [asset.rsplit("/", 1)[-1] for asset in page.assets]
    for name in expected:
        assert name in names, f"{url} does not load {name}: {page.assets}"

    static_url = "/" + settings.STATIC_URL.strip("/") + "/"
    static_assets = [asset for asset in page.assets if asset.startswith(static_url)]
    assert len(static_assets) >= len(expected)
    for asset in page.assets:
        if asset.startswith(static_url):
            assert finders.find(asset.removeprefix(static_url)), f"no static file behind {asset}"
        response = client.get(asset, HTTP_ACCEPT="application/json")
        assert response.status_code == 200, f"{asset} answered {response.status_code}"
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert len(body) > 100, f"{asset} is empty"


def test_swagger_ui_never_asks_the_public_validator():
    """Swagger UI's default validator puts an <img> from validator.swagger.io on the page."""
    page = page_assets(Client(), "/api/docs/")
    config = "".join(page.inline_scripts)
    assert '"validatorUrl": null' in config

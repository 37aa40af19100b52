"""``/admin/inbox/``: mounted before ``admin.site.urls`` so admin's catch-all does not take it."""

from inbox.views import urlpatterns_views

app_name = "inbox"
urlpatterns = urlpatterns_views()

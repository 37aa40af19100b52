"""Conversation pages outside the REST API: the staff-only media view."""

from django.urls import path

from conversations import views

app_name = "conversations"

urlpatterns = [
    path("media/<int:message_id>/", views.media, name="media"),
]

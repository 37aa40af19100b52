"""REST API for campaigns: list and read them with their progress (read-only role), and
start, pause, resume, cancel or retry the failed recipients (agent role).

A refusal (a template whose variables do not fit, a segment with nobody to send to, a
messaging tier too small, an action the campaign's state does not allow) is a 409 naming the
reason, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.models import Campaign
from campaigns.services import lifecycle
from campaigns.services.progress import failed_recipients, progress
from whatsappcrm_backend.api import ApiMixin, PagePagination, error_responses
from whatsappcrm_backend.api_errors import ApiError

__all__ = ["urlpatterns"]


class CampaignSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = (
            "id", "name", "app_config", "template", "variables", "segment", "scheduled_at", "flow",
            "pace_across_days", "state", "state_reason", "created_by", "created_at", "started_at",
            "paused_at", "finished_at", "matched_count", "skipped_opted_out", "skipped_blocked",
        )  # fmt: skip
        read_only_fields = fields


class CampaignDetailSerializer(CampaignSerializer):
    progress = serializers.SerializerMethodField()
    failed = serializers.SerializerMethodField()

    class Meta(CampaignSerializer.Meta):
        fields = (*CampaignSerializer.Meta.fields, "progress", "failed")
        read_only_fields = fields

    def get_progress(self, obj: Campaign) -> dict[str, Any]:
        return progress(obj)

    def get_failed(self, obj: Campaign) -> list[dict[str, Any]]:
        return failed_recipients(obj)


def _campaigns() -> QuerySet[Campaign]:
    return Campaign.objects.select_related("app_config").order_by("-created_at", "-id")


class CampaignList(ApiMixin, generics.ListAPIView):
    """Campaigns, newest first. Role: read-only."""

    serializer_class = CampaignSerializer
    pagination_class = PagePagination

    def get_queryset(self) -> QuerySet[Campaign]:
        return _campaigns()

    @extend_schema(responses={200: CampaignSerializer(many=True), **error_responses(400, 404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class CampaignDetail(ApiMixin, generics.RetrieveAPIView):
    """One campaign with its progress (counts by status, rate, estimated finish) and its
    failed recipients. Role: read-only."""

    serializer_class = CampaignDetailSerializer

    def get_queryset(self) -> QuerySet[Campaign]:
        return _campaigns()

    @extend_schema(responses={200: CampaignDetailSerializer, **error_responses(404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class _CampaignAction(ApiMixin, generics.GenericAPIView):
    """POST with an empty body; answers the campaign as it is afterwards. Role: agent."""

    serializer_class = CampaignDetailSerializer
    action_name = ""

    def get_queryset(self) -> QuerySet[Campaign]:
        return _campaigns()

    def act(self, campaign: Campaign, request: Request) -> None:
        raise NotImplementedError

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        campaign = self.get_object()
        try:
            self.act(campaign, request)
        except lifecycle.CampaignError as exc:
            raise ApiError(409, "conflict", f"Campaign {campaign.name!r} not {self.action_name}: {exc.message}",
                           {exc.field: [exc.message]}) from None
        campaign.refresh_from_db()
        return Response(CampaignDetailSerializer(campaign).data)


_ACTION_SCHEMA = {"request": None, "responses": {200: CampaignDetailSerializer, **error_responses(404, 409)}}


class CampaignStart(_CampaignAction):
    action_name = "started"

    @extend_schema(summary="Start a campaign (or schedule it, if its time is in the future)", **_ACTION_SCHEMA)
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)

    def act(self, campaign: Campaign, request: Request) -> None:
        from django.utils import timezone

        if campaign.scheduled_at and campaign.scheduled_at > timezone.now():
            lifecycle.schedule_campaign(campaign.pk, campaign.scheduled_at)
        else:
            lifecycle.start_campaign(campaign.pk)


class CampaignPause(_CampaignAction):
    action_name = "paused"

    @extend_schema(summary="Pause a running campaign", **_ACTION_SCHEMA)
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)

    def act(self, campaign: Campaign, request: Request) -> None:
        lifecycle.pause_campaign(campaign.pk, f"paused by {request.user.get_username()}")


class CampaignResume(_CampaignAction):
    action_name = "resumed"

    @extend_schema(summary="Resume a paused campaign", **_ACTION_SCHEMA)
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)

    def act(self, campaign: Campaign, request: Request) -> None:
        lifecycle.resume_campaign(campaign.pk)


class CampaignCancel(_CampaignAction):
    action_name = "cancelled"

    @extend_schema(summary="Cancel a campaign; what is not sent yet stays unsent", **_ACTION_SCHEMA)
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)

    def act(self, campaign: Campaign, request: Request) -> None:
        lifecycle.cancel_campaign(campaign.pk)


class CampaignRetryFailed(_CampaignAction):
    action_name = "retried"

    @extend_schema(summary="Queue the failed recipients again (not those Meta asked not to retry)",
                   **_ACTION_SCHEMA)
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)

    def act(self, campaign: Campaign, request: Request) -> None:
        lifecycle.retry_failed(campaign.pk)


urlpatterns = [
    path("campaigns/", CampaignList.as_view(), name="campaign-list"),
    path("campaigns/<int:pk>/", CampaignDetail.as_view(), name="campaign-detail"),
    path("campaigns/<int:pk>/start/", CampaignStart.as_view(), name="campaign-start"),
    path("campaigns/<int:pk>/pause/", CampaignPause.as_view(), name="campaign-pause"),
    path("campaigns/<int:pk>/resume/", CampaignResume.as_view(), name="campaign-resume"),
    path("campaigns/<int:pk>/cancel/", CampaignCancel.as_view(), name="campaign-cancel"),
    path("campaigns/<int:pk>/retry-failed/", CampaignRetryFailed.as_view(), name="campaign-retry-failed"),
]

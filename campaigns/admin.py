"""Campaigns in admin: segments with their match count, campaigns with start / pause /
resume / cancel / retry-failed actions and a progress bar that polls a small JSON view."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from campaigns.models import Campaign, CampaignState, Recipient, Segment
from campaigns.services import lifecycle
from campaigns.services.progress import failed_recipients, progress
from campaigns.services.segments import segment_counts, validate_field_name
from whatsappcrm_backend.admin_permissions import CannotAdd


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("name", "matches", "app_config", "label_match", "last_inbound_within_days")
    search_fields = ("name",)
    filter_horizontal = ("labels",)
    readonly_fields = ("matches",)

    @admin.display(description="contacts matched (skipped: opted out, blocked)")
    def matches(self, obj: Segment) -> str:
        if obj.pk is None:
            return "save to count"
        counts = segment_counts(obj)
        return (f"{counts.matched} matched, {counts.sendable} to send to "
                f"(skipped: {counts.opted_out} opted out, {counts.blocked} blocked)")

    def save_model(self, request: HttpRequest, obj: Segment, form: Any, change: bool) -> None:
        problem = validate_field_name(obj.field_name) if obj.field_name else None
        if problem:
            messages.error(request, f"field_name: {problem}; the field condition was cleared")
            obj.field_name = ""
        super().save_model(request, obj, form, change)


_PROGRESS_SCRIPT = """
<div id="campaign-progress" data-url="{url}" style="max-width:640px">
  <div style="background:#e5e7eb;border-radius:4px;height:18px">
    <div class="bar" style="background:#16a34a;height:18px;border-radius:4px;width:{percent}%"></div>
  </div>
  <p class="summary">{summary}</p>
</div>
<script>
(function () {{
  var box = document.getElementById("campaign-progress");
  function refresh() {{
    fetch(box.dataset.url, {{credentials: "same-origin"}}).then(function (r) {{ return r.json(); }})
      .then(function (p) {{
        box.querySelector(".bar").style.width = p.percent + "%";
        var c = p.counts;
        box.querySelector(".summary").textContent = p.state + ": " + p.finished + "/" + p.total + " (" +
          p.percent + "%) - pending " + c.pending + ", sent " + c.sent + ", delivered " + c.delivered +
          ", read " + c.read + ", replied " + c.replied + ", failed " + c.failed + ", skipped " + c.skipped +
          ", cancelled " + c.cancelled + " - " + p.send_rate_per_second + "/s of " +
          p.configured_rate_per_second + "/s" + (p.estimated_finish ? ", done about " + p.estimated_finish : "");
        if (p.state === "running" || p.state === "scheduled") {{ setTimeout(refresh, 2000); }}
      }});
  }}
  setTimeout(refresh, 2000);
}})();
</script>
"""


def _summary(p: dict[str, Any]) -> str:
    c = p["counts"]
    return (f"{p['state']}: {p['finished']}/{p['total']} ({p['percent']}%) - pending {c['pending']}, sent {c['sent']}, "
            f"delivered {c['delivered']}, read {c['read']}, replied {c['replied']}, failed {c['failed']}, "
            f"skipped {c['skipped']}, cancelled {c['cancelled']} - {p['send_rate_per_second']}/s of "
            f"{p['configured_rate_per_second']}/s")


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "state", "app_config", "template", "segment", "scheduled_at", "percent_done")
    list_filter = ("state", "app_config")
    search_fields = ("name",)
    readonly_fields = ("state", "state_reason", "started_at", "running_since", "paused_at", "finished_at",
                       "matched_count", "skipped_opted_out", "skipped_blocked", "progress_bar", "failed_list",
                       "created_by")
    actions = ("start_selected", "pause_selected", "resume_selected", "cancel_selected", "retry_failed_selected")

    def get_urls(self) -> list:
        custom = [path("<int:campaign_id>/progress/", self.admin_site.admin_view(self.progress_view),
                       name="campaigns_campaign_progress")]
        return custom + super().get_urls()

    def progress_view(self, request: HttpRequest, campaign_id: int) -> JsonResponse:
        campaign = Campaign.objects.select_related("app_config").filter(pk=campaign_id).first()
        if campaign is None or not self.has_view_permission(request, campaign):
            return JsonResponse({"error": "no such campaign"}, status=404)
        return JsonResponse(progress(campaign))

    @admin.display(description="done")
    def percent_done(self, obj: Campaign) -> str:
        return f"{progress(obj)['percent']}%" if obj.state != CampaignState.DRAFT else "-"

    @admin.display(description="progress")
    def progress_bar(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "-"
        p = progress(obj)
        url = reverse("admin:campaigns_campaign_progress", args=[obj.pk])
        return format_html(_PROGRESS_SCRIPT, url=url, percent=p["percent"], summary=_summary(p))

    @admin.display(description="failed recipients")
    def failed_list(self, obj: Campaign) -> str:
        rows = failed_recipients(obj) if obj.pk else []
        if not rows:
            return "none"
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li>{} {}: {}</li>", ((r["wa_id"], r["code"] or "", r["error"]) for r in rows)))

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        if not obj.created_by:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)

    def _each(self, request: HttpRequest, queryset: Any, verb: str, act: Any) -> None:
        for campaign in queryset:
            try:
                result = act(campaign)
            except lifecycle.CampaignError as exc:
                self.message_user(request, f"{campaign}: not {verb}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: {verb}{result or ''}", messages.SUCCESS)

    @admin.action(description="Start (or schedule, if it has a future time)")
    def start_selected(self, request: HttpRequest, queryset: Any) -> None:
        def act(campaign: Campaign) -> str:
            if campaign.scheduled_at and campaign.scheduled_at > timezone.now():
                lifecycle.schedule_campaign(campaign.pk, campaign.scheduled_at)
                return f" for {campaign.scheduled_at:%Y-%m-%d %H:%M}"
            started = lifecycle.start_campaign(campaign.pk)
            return (f": {started.recipients} recipients ({started.skipped_opted_out} opted out and "
                    f"{started.skipped_blocked} blocked skipped)")
        self._each(request, queryset, "started", act)

    @admin.action(description="Pause")
    def pause_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._each(request, queryset, "paused",
                   lambda c: lifecycle.pause_campaign(c.pk, f"paused by {request.user.get_username()}") and None)

    @admin.action(description="Resume")
    def resume_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._each(request, queryset, "resumed", lambda c: lifecycle.resume_campaign(c.pk) and None)

    @admin.action(description="Cancel (the rest stays unsent)")
    def cancel_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._each(request, queryset, "cancelled", lambda c: lifecycle.cancel_campaign(c.pk) and None)

    @admin.action(description="Retry failed recipients")
    def retry_failed_selected(self, request: HttpRequest, queryset: Any) -> None:
        def act(campaign: Campaign) -> str:
            result = lifecycle.retry_failed(campaign.pk)
            return f": {result.requeued} queued again, {result.not_retried} not retried (Meta asked not to)"
        self._each(request, queryset, "retried", act)


@admin.register(Recipient)
class RecipientAdmin(CannotAdd, admin.ModelAdmin):
    list_display = ("campaign", "contact", "state", "message_status", "error")
    list_filter = ("state", "campaign")
    raw_id_fields = ("contact", "message")
    list_select_related = ("contact", "message", "campaign")

    @admin.display(description="message status")
    def message_status(self, obj: Recipient) -> str:
        if obj.message is None:
            return "-"
        code = f" ({obj.message.error_code})" if obj.message.error_code else ""
        return f"{obj.message.status}{code}"

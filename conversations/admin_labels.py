"""Admin for labels, and the contact list's label column, filter and bulk actions.

"Add label…" / "Remove label…" on the contact list open a page that asks which label, then
change every selected contact at once through ``conversations.services.labels`` (the same
service as the REST API). ``conversations/admin.py`` builds the contact admin on
``ContactLabelsAdmin``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from conversations.models import Contact, Label
from conversations.services.labels import LabelError, change_labels

PREVIEW_CONTACTS = 10


class LabelForm(forms.ModelForm):
    class Meta:
        model = Label
        fields = ("name", "color")
        widgets = {"color": forms.TextInput(attrs={"type": "color"})}


def _swatch(label: Label) -> SafeString:
    return format_html(
        '<span style="display:inline-block;padding:0 6px;border-radius:8px;background:{};color:#fff">{}</span>',
        label.color, label.name,
    )


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    form = LabelForm
    list_display = ("name", "swatch", "contact_count", "created_at")
    search_fields = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Label]:
        return super().get_queryset(request).annotate(contact_count=Count("contacts"))

    @admin.display(description="colour")
    def swatch(self, obj: Label) -> SafeString:
        return _swatch(obj)

    @admin.display(description="contacts", ordering="contact_count")
    def contact_count(self, obj: Label) -> int:
        return obj.contact_count


class ChooseLabelForm(forms.Form):
    label = forms.ModelChoiceField(queryset=Label.objects.all(), empty_label=None)


class ContactLabelsAdmin(admin.ModelAdmin):
    """The contact list's labels: a column, and bulk add / remove with a label chosen on an
    intermediate page. The contact admin's base class."""

    actions = ("add_label", "remove_label")
    autocomplete_fields = ("labels",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Contact]:
        return super().get_queryset(request).prefetch_related("labels")

    @admin.display(description="labels")
    def label_list(self, obj: Contact) -> SafeString | str:
        labels = list(obj.labels.all())  # prefetched
        return format_html_join(" ", "{}", ((_swatch(label),) for label in labels)) if labels else "-"

    @admin.action(description="Add label…", permissions=["change"])
    def add_label(self, request: HttpRequest, queryset: QuerySet[Contact]) -> TemplateResponse | None:
        return self._label_action(request, queryset, add=True)

    @admin.action(description="Remove label…", permissions=["change"])
    def remove_label(self, request: HttpRequest, queryset: QuerySet[Contact]) -> TemplateResponse | None:
        return self._label_action(request, queryset, add=False)

    def _label_action(self, request: HttpRequest, queryset: QuerySet[Contact], *, add: bool) -> Any:
        form = ChooseLabelForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            label = form.cleaned_data["label"]
            ids = list(queryset.order_by().values_list("pk", flat=True))
            try:
                done = change_labels(ids, add=[label.pk] if add else (), remove=() if add else [label.pk])
            except LabelError as exc:  # e.g. the label was deleted meanwhile
                self.message_user(request, exc.message, messages.ERROR)
                return None
            changed = done.added if add else done.removed
            verb = "Added" if add else "Removed"
            self.message_user(
                request,
                f"{verb} label “{label.name}” {'to' if add else 'from'} {changed} contact{'s' if changed != 1 else ''}"
                f" ({done.contacts - changed} already {'had' if add else 'did not have'} it).",
                messages.SUCCESS,
            )
            return None  # back to the contact list
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": "Add label" if add else "Remove label",
            "verb": "Add" if add else "Remove",
            "preposition": "to" if add else "from",
            "opts": opts,
            "form": form,
            "count": queryset.count(),
            "preview": list(queryset[:PREVIEW_CONTACTS]),
            "no_labels": not Label.objects.exists(),
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action": "add_label" if add else "remove_label",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/conversations/contact/label_action.html", context)

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from viewings.models import TakeoutCopy, ViewingAttachment, ViewingRequest


@admin.register(ViewingRequest)
class ViewingRequestAdmin(admin.ModelAdmin[ViewingRequest]):
    # Steps go through the centre admin's pages (viewings.services), which audit each one.
    list_display = ["pk", "site", "camera", "received_at", "reply_due", "status", "outcome"]
    list_filter = ["status", "site"]
    readonly_fields = [field.name for field in ViewingRequest._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TakeoutCopy)
class TakeoutCopyAdmin(admin.ModelAdmin[TakeoutCopy]):
    list_display = ["pk", "request", "recipient", "sha256", "created_at"]
    readonly_fields = [field.name for field in TakeoutCopy._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ViewingAttachment)
class ViewingAttachmentAdmin(admin.ModelAdmin[ViewingAttachment]):
    list_display = ["pk", "request", "name", "content_type", "size"]
    readonly_fields = [field.name for field in ViewingAttachment._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

from django.contrib import admin

from reports.models import AuditEvent, EvidencePackage, PoliceReport


@admin.register(PoliceReport)
class PoliceReportAdmin(admin.ModelAdmin[PoliceReport]):
    list_display = ["pk", "case", "station", "reason", "status", "sent_at"]
    list_filter = ["status", "reason", "station"]
    readonly_fields = ["status"]


@admin.register(EvidencePackage)
class EvidencePackageAdmin(admin.ModelAdmin[EvidencePackage]):
    list_display = ["pk", "report", "created_by", "created_at", "expires_at", "size"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """The audit trail can be read here, never changed."""

    list_display = ["occurred_at", "actor_label", "action", "object_type", "object_id", "outcome"]
    list_filter = ["action", "outcome"]
    search_fields = ["actor_label", "action", "object_id"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

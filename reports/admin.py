from django.contrib import admin

from audit.admin import ReadOnlyAdmin
from reports.models import EvidencePackage, PoliceReport, WorkingCopy


@admin.register(PoliceReport)
class PoliceReportAdmin(admin.ModelAdmin[PoliceReport]):
    list_display = ["pk", "case", "station", "reason", "status", "sent_at"]
    list_filter = ["status", "reason", "station"]
    readonly_fields = ["status"]


@admin.register(EvidencePackage)
class EvidencePackageAdmin(admin.ModelAdmin[EvidencePackage]):
    list_display = ["pk", "report", "created_by", "created_at", "expires_at", "size"]


@admin.register(WorkingCopy)
class WorkingCopyAdmin(ReadOnlyAdmin):
    list_display = ["pk", "segment", "blur", "faces_blurred", "tool", "sha256", "created_at"]
    list_filter = ["blur"]

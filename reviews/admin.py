from django.contrib import admin

from reviews.models import ExpertProfile, ReviewDecision


@admin.register(ExpertProfile)
class ExpertProfileAdmin(admin.ModelAdmin[ExpertProfile]):
    list_display = ["user", "organisation", "regions"]
    raw_id_fields = ["user"]


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(admin.ModelAdmin[ReviewDecision]):
    list_display = ["case", "expert", "verdict", "category", "outcome", "created_at"]
    list_filter = ["verdict", "outcome"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

from django.urls import path

from reviews import views

urlpatterns = [
    path("", views.review_queue, name="review-queue"),
    path("agreement/", views.review_agreement_view, name="review-agreement"),
    path("cases/<int:pk>/", views.review_case, name="review-case"),
    path("cases/<int:pk>/claim/", views.review_claim, name="review-claim"),
    path("cases/<int:pk>/release/", views.review_release, name="review-release"),
    path("cases/<int:pk>/decide/", views.review_decide, name="review-decide"),
]

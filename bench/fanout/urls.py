from django.urls import path

from . import views

urlpatterns = [
    path("", views.EntriesView.as_view()),
    path("bench/write/", views.write),
    path("bench/traced/", views.traced),
]

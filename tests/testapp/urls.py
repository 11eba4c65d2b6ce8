from django.contrib.auth.decorators import login_required
from django.urls import path

from . import views

urlpatterns = [
    path("", views.ExampleView.as_view(), name="example"),
    path("typed/", views.TypedView.as_view()),
    path("actions/", views.ActionsView.as_view()),
    path("inherited/", views.InheritedView.as_view()),
    path("private/", views.PrivateView.as_view()),
    path("staff/", views.StaffView.as_view()),
    path("decorated/", login_required(views.ExampleView.as_view())),
    path("item/<int:pk>/", views.ItemView.as_view()),
    path("tag/", views.TagView.as_view()),
    path("entries/", views.EntriesView.as_view()),
    path("live/entries/", views.LiveEntriesView.as_view()),
    path("live/mine/", views.MyEntriesView.as_view()),
    path("live/counter/", views.CounterView.as_view()),
    path("live/entry/<int:pk>/", views.EntryDetailView.as_view()),
    path("live/labels/", views.LiveLabelsView.as_view()),
]

from django.urls import path

from . import views

urlpatterns = [
    path("", views.IndexView.as_view(), name="index"),
    path("example/", views.ExampleView.as_view(), name="example"),
    path("entries/", views.ModelExampleView.as_view(), name="entries"),
    path("events/", views.EventsView.as_view(), name="events"),
]

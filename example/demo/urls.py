from django.contrib.auth.views import LogoutView
from django.urls import path

from . import views

urlpatterns = [
    path("", views.IndexView.as_view(), name="index"),
    path("board/", views.BoardView.as_view(), name="board"),
    path("board/pick/", views.PickUserView.as_view(), name="pick-user"),
    path("board/leave/", LogoutView.as_view(next_page="board"), name="leave"),
    path("example/", views.ExampleView.as_view(), name="example"),
    path("entries/", views.ModelExampleView.as_view(), name="entries"),
    path("events/", views.EventsView.as_view(), name="events"),
]

import benchcommon
from benchapp import views
from django.urls import path

urlpatterns = [
    path("value/", views.ValueView.as_view(), name="value"),
    path("list/", views.ListView.as_view(), name="list"),
    *benchcommon.urlpatterns(),
]

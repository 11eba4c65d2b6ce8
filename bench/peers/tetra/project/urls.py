import benchcommon
from benchapp import views
from django.urls import include, path

urlpatterns = [
    path("value/", views.value, name="value"),
    path("list/", views.items, name="list"),
    path("__tetra__/", include("tetra.urls")),
    *benchcommon.urlpatterns(),
]

import benchcommon
from benchapp import views
from django.urls import path

urlpatterns = [
    path("value/", views.value, name="value"),
    path("list/", views.items, name="list"),
    *benchcommon.urlpatterns(),
]

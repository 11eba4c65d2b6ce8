from django.contrib.auth.decorators import login_required
from django.urls import include, path

from . import truth, views

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
    path("live/headline/<int:pk>/", views.EntryHeadlineView.as_view()),
    path("live/tally/<int:pk>/", views.EntryTallyView.as_view()),
    path("truth/picked/", truth.PickedView.as_view()),
    path("truth/annotated/", truth.AnnotatedView.as_view()),
    path("truth/relations/", truth.RelationsView.as_view()),
    path("truth/rawtext/", truth.RawTextView.as_view()),
    path("truth/notes/", truth.NotesView.as_view()),
    path("truth/items/", truth.ItemsView.as_view()),
    path("truth/fragile/", truth.FragileView.as_view()),
    path("truth/broadcast/", truth.BroadcastView.as_view()),
    path("truth/broadcast/child/", truth.BroadcastChildView.as_view()),
    path("truth/broadcast/misnamed/", truth.MisnamedGroupsView.as_view()),
    path("sec/", include("tests.testapp.security")),
    path("forms/", include("tests.testapp.forms_views")),
    path("live/labels/", views.LiveLabelsView.as_view()),
    path("int/", include("tests.testapp.integration")),
    path("aud/", include("tests.testapp.audience")),
]

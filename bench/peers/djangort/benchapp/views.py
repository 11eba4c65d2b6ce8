from django.shortcuts import get_object_or_404

from django_rt import RTView

from .models import Item


class ValueView(RTView):
    """Page A: one row's name."""

    template_name = "benchapp/value.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["item"] = get_object_or_404(Item, pk=1)
        return context


class ListView(RTView):
    """Page B: the 20 rows."""

    template_name = "benchapp/list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["items"] = Item.objects.all()
        return context

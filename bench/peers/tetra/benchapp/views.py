from django.shortcuts import get_object_or_404, render

from .models import Item


def value(request):
    """Page A: one row's name."""
    return render(request, "benchapp/value.html", {"item": get_object_or_404(Item, pk=1)})


def items(request):
    """Page B: the 20 rows, one component each."""
    return render(request, "benchapp/list.html", {"items": Item.objects.all()})

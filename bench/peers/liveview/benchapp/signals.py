"""The glue django-liveview needs to show a save: a ``post_save`` receiver that renders
the row's fragment and broadcasts it to every connected page (``send(None, ...,
broadcast=True)``, as its docs show for background work). The pages that show the row
replace the element it targets; the others find no such element and ignore it."""

from django.db.models.signals import post_save
from django.dispatch import receiver
from django.template.loader import render_to_string
from liveview import send

from .models import Item


@receiver(post_save, sender=Item)
def broadcast_item(sender, instance, **kwargs):
    html = render_to_string("benchapp/name.html", {"item": instance})
    send(None, {"target": f"#name-{instance.pk}", "html": html}, broadcast=True)

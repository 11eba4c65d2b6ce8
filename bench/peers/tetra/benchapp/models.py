from django.db import models
from tetra.models import ReactiveModel


class Item(ReactiveModel):
    """A row whose saves Tetra pushes to the components subscribed to it."""

    name = models.CharField(max_length=100)
    position = models.IntegerField(default=0)

    class Tetra:
        fields = ["name"]

    class Meta:
        ordering = ["position"]

    def __str__(self):
        return self.name

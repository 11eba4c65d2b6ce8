from django.conf import settings
from django.db import models
from django.utils.html import format_html


class Author(models.Model):
    name = models.CharField(max_length=40)

    def __str__(self) -> str:
        return self.name

    def entry_count(self) -> int:
        """A method that runs a query of its own (read-set tests)."""
        return self.entry_set.count()


class Entry(models.Model):
    name = models.CharField(max_length=20)
    done = models.BooleanField(default=False)
    position = models.IntegerField(default=0)
    author = models.ForeignKey(Author, null=True, blank=True, on_delete=models.SET_NULL)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )

    def __str__(self) -> str:
        return self.name

    @property
    def badge(self) -> str:
        """Safe HTML built from the name (for ``|safe`` and autoescape tests)."""
        return format_html('<b class="badge">{}</b>', self.name)

    @property
    def checked(self) -> str:
        """Raises for one name: a template that fails on some data (failure tests)."""
        if self.name == "explode":
            raise RuntimeError("this entry cannot be shown")
        return f"{self.name} ok"

    @property
    def emphasis(self) -> str:
        """HTML (not marked safe) around the name, for ``|safe`` and autoescape tests."""
        return f"<em>{self.name}</em>"


class Tag(models.Model):
    name = models.CharField(max_length=20)
    entries = models.ManyToManyField(Entry, blank=True, related_name="tags")

    def __str__(self) -> str:
        return self.name


class Note(models.Model):
    """A private note of one user on an entry (per-user ``Prefetch`` tests)."""

    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="notes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.CharField(max_length=40)

    def __str__(self) -> str:
        return self.text


class ActiveManager(models.Manager["Item"]):
    def get_queryset(self) -> models.QuerySet["Item"]:
        return super().get_queryset().filter(deleted=False)


class Item(models.Model):
    """A row with a soft-delete default manager."""

    name = models.CharField(max_length=20)
    deleted = models.BooleanField(default=False)

    everything = models.Manager()
    objects = ActiveManager()

    class Meta:
        default_manager_name = "objects"
        base_manager_name = "everything"

    def __str__(self) -> str:
        return self.name


class Label(models.Model):
    """A row keyed by text: primary keys with dots, dashes, percent signs, spaces..."""

    code = models.CharField(primary_key=True, max_length=40)
    name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.name


class Place(models.Model):
    """A parent of multi-table inheritance: a shop's save writes a place's row too."""

    name = models.CharField(max_length=40)

    def __str__(self) -> str:
        return self.name


class Shop(Place):
    kind = models.CharField(max_length=20, default="")

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

from django.conf import settings
from django.db import models


class Entry(models.Model):
    """The README's second example: a name, listed live on the entries page."""

    name = models.CharField(max_length=20)

    class Meta:
        verbose_name_plural = "entries"

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    """One card of the team board."""

    title = models.CharField(max_length=80)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
    )
    points = models.PositiveSmallIntegerField(default=1, help_text="A rough size, 1 to 13.")
    done = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return self.title


class Activity(models.Model):
    """A line of the board's activity feed: who did what to which task."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    verb = models.CharField(max_length=20)
    subject = models.CharField(max_length=80)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]
        get_latest_by = ["at", "pk"]
        verbose_name_plural = "activity"

    def __str__(self) -> str:
        who = self.actor.get_short_name() if self.actor else "A visitor"
        return f"{who} {self.verb} “{self.subject}”"

"""django-rt's one table: the outbox of :class:`~django_rt.changes.database.DatabaseFeed`.

It is created by ``migrate`` in every project, and stays empty unless that feed is
configured.
"""

from __future__ import annotations

from django.db import models


class OutboxEntry(models.Model):
    """One committed batch of changes, written in the transaction that made them, read
    by the feed's reader in every process, pruned after a while."""

    id = models.BigAutoField(primary_key=True)
    created = models.DateTimeField()
    #: The feed instance (one per process) that wrote it: it delivered the batch to its
    #: own process already, and its reader skips it.
    origin = models.CharField(max_length=32)
    #: The batch, as ``django_rt.changes.transport.encode`` writes it.
    changes = models.TextField()

    class Meta:
        db_table = "django_rt_outbox"
        verbose_name = "change feed outbox entry"
        verbose_name_plural = "change feed outbox entries"

    def __str__(self) -> str:
        return f"outbox entry {self.pk}"

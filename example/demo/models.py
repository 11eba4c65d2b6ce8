from django.db import models


class Entry(models.Model):
    name = models.CharField(max_length=20)

    class Meta:
        verbose_name_plural = "entries"

    def __str__(self) -> str:
        return self.name

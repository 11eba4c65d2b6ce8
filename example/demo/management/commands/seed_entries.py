from django.core.management.base import BaseCommand

from demo.models import Entry


class Command(BaseCommand):
    help = "Create a few demo entries if there are none."

    def handle(self, *args: object, **options: object) -> None:
        if not Entry.objects.exists():
            Entry.objects.bulk_create(Entry(name=name) for name in ("apple", "banana", "cherry"))
            self.stdout.write("Created 3 demo entries.")

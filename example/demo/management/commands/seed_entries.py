"""Seed the demo: the README's entries, a team, its board of tasks, an admin account.

Runs on every ``./dev demo``; each part is created only when it is missing, so data you
changed stays as it is.
"""

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand
from django.utils import timezone

from demo.models import Activity, Entry, Task

ADMIN = ("admin", "admin")
TEAM = [("ana", "Ana"), ("ben", "Ben"), ("chloe", "Chloé"), ("dev", "Dev")]
TASKS = [
    # title, assignee, points, done
    ("Sketch the onboarding flow", "ana", 3, True),
    ("Write the release notes", "ana", 2, False),
    ("Fix the flaky login test", "ben", 5, True),
    ("Profile the search page", "ben", 8, False),
    ("Pick a colour for the new badge", "chloe", 1, True),
    ("Translate the help page", "chloe", 3, False),
    ("Set up the staging database", "dev", 5, False),
    ("Order cake for Friday", None, 1, False),
]


class Command(BaseCommand):
    help = "Create the demo's entries, team, tasks and admin account where they are missing."

    def handle(self, *args: object, **options: object) -> None:
        User = get_user_model()
        if not Entry.objects.exists():
            Entry.objects.bulk_create(Entry(name=name) for name in ("apple", "banana", "cherry"))
            self.stdout.write("Created 3 demo entries.")

        team = {}
        for username, first_name in TEAM:
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": first_name}
            )
            if created:
                # Team members have no password: the board's "who are you" picker logs
                # them in. Only the admin logs in with a password.
                user.set_unusable_password()
                user.save()
            team[username] = user

        if not Task.objects.exists():
            start = timezone.now() - timedelta(hours=len(TASKS))
            for hour, (title, owner, points, done) in enumerate(TASKS):
                added = start + timedelta(hours=hour)
                finished = added + timedelta(minutes=40) if done else None
                task = Task.objects.create(
                    title=title, assignee=team.get(owner), points=points, done=done
                )
                # created and at are set on insert; the seed dates them in the past.
                Task.objects.filter(pk=task.pk).update(created=added, done_at=finished)
                # Dev files the tasks that nobody owns yet.
                actor = team[owner or "dev"]
                self.log(actor, "added", title, added)
                if finished:
                    self.log(actor, "completed", title, finished)
            self.stdout.write(f"Created {len(TASKS)} tasks for {len(team)} team members.")

        username, password = ADMIN
        admin = User.objects.filter(username=username).first()
        if admin is None:
            User.objects.create_superuser(username, email="", password=password)
            self.stdout.write(f"Created the admin account: {username} / {password} (/admin/).")
        elif admin.check_password(password):
            self.stdout.write(f"Admin account: {username} / {password} (/admin/).")

    def log(self, actor: AbstractBaseUser, verb: str, subject: str, at: datetime) -> None:
        line = Activity.objects.create(actor=actor, verb=verb, subject=subject)
        Activity.objects.filter(pk=line.pk).update(at=at)

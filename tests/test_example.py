"""The demo project starts and serves its pages (the README's first command runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def manage(*args: str, database: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mysite.settings"}
    if database is not None:
        env["DEMO_DATABASE"] = str(database)
    return subprocess.run(
        [sys.executable, str(ROOT / "example/manage.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


def run(script: str, database: Path) -> dict[str, object]:
    """Run ``script`` in the demo's ``manage.py shell``; it prints one JSON object."""
    result = manage("shell", "-v", "0", "-c", script, database=database)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A fresh demo database, migrated and seeded twice, and what each seeding said."""
    database = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    migrated = manage("migrate", "--noinput", database=database)
    assert migrated.returncode == 0, migrated.stderr
    outputs = []
    for _ in range(2):
        seeded = manage("seed_entries", database=database)
        assert seeded.returncode == 0, seeded.stderr
        outputs.append(seeded.stdout)
    return database, outputs


def test_demo_passes_its_system_checks():
    result = manage("check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_demo_has_no_missing_migrations():
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_seed_creates_the_team_the_tasks_and_the_admin_once(seeded):
    database, (first, second) = seeded
    assert "Created the admin account: admin / admin" in first
    assert "Created 8 tasks for 4 team members." in first
    assert "Created" not in second
    assert "Admin account: admin / admin" in second
    counts = run(
        """
import json
from django.contrib.auth import authenticate, get_user_model
from demo.models import Activity, Entry, Task
User = get_user_model()
admin = authenticate(username="admin", password="admin")
print(json.dumps({
    "admin": bool(admin and admin.is_superuser and admin.is_staff),
    "team": sorted(u.username for u in User.objects.filter(is_staff=False)),
    "passwords": [u.has_usable_password() for u in User.objects.filter(is_staff=False)],
    "tasks": Task.objects.count(),
    "done": Task.objects.filter(done=True).count(),
    "activity": Activity.objects.count(),
    "entries": Entry.objects.count(),
}))
""",
        database,
    )
    assert counts == {
        "admin": True,
        "team": ["ana", "ben", "chloe", "dev"],
        "passwords": [False] * 4,
        "tasks": 8,
        "done": 3,
        "activity": 11,
        "entries": 3,
    }


def test_pages_render_and_the_picker_logs_team_members_in(seeded):
    database, _ = seeded
    result = run(
        """
import json
from django.test import Client
client = Client(HTTP_HOST="localhost")
out = {}
from django.contrib.staticfiles import finders
for path in ["/", "/board/", "/example/", "/entries/", "/events/"]:
    response = client.get(path)
    out[path] = response.status_code
board = client.get("/board/").content.decode()
out["styled"] = "/static/demo/demo.css" in board and bool(finders.find("demo/demo.css"))
out["live"] = "django_rt/rt.js" in board
out["anonymous"] = "Who are you?" in board
out["pick admin"] = client.post("/board/pick/", {"username": "admin"}).status_code
picked = client.post("/board/pick/", {"username": "ana"})
out["pick ana"] = [picked.status_code, picked["Location"]]
board = client.get("/board/").content.decode()
out["ana"] = "Hi, Ana" in board and 'id="my-tasks"' in board
out["leave"] = client.post("/board/leave/").status_code
out["left"] = "Who are you?" in client.get("/board/").content.decode()
print(json.dumps(out))
""",
        database,
    )
    assert result == {
        "/": 200,
        "/board/": 200,
        "/example/": 200,
        "/entries/": 200,
        "/events/": 200,
        "styled": True,
        "live": True,
        "anonymous": True,
        "pick admin": 404,
        "pick ana": [302, "/board/"],
        "ana": True,
        "leave": 302,
        "left": True,
    }

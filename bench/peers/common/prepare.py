"""Creates a stack's tables and rows: ``python prepare.py [command ...]``.

Run by ``bench/browser_latency.py`` with the stack's own interpreter, its settings in
``DJANGO_SETTINGS_MODULE`` and its database in ``BENCH_DB``. Extra arguments name
management commands to run afterwards (Tetra's ``tetrabuild``).
"""

import sys

import django
from django.core.management import call_command

django.setup()

import benchcommon  # noqa: E402

call_command("migrate", run_syncdb=True, verbosity=0)
benchcommon.seed()
for command in sys.argv[1:]:
    call_command(command)

"""Per-connection limits, and the registry of the process's open connections.

- :class:`TokenBucket`: the rate of frames one connection may send (every frame, a
  malformed one too);
- :class:`LogBudget`: how many log lines one connection's refused frames may write;
- :class:`Registry`: the joined connections, by page and by user, which the caps
  ``MAX_CONNECTIONS_PER_TOKEN`` and ``MAX_CONNECTIONS_PER_USER`` count.

The registry counts this process's connections: behind a load balancer with ``N``
processes, a page or a user may hold up to ``N`` times the cap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable

from .conf import rt_settings


class TokenBucket:
    """Allows ``rate`` events per second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class LogBudget:
    """At most ``lines`` log lines per ``seconds``; the lines it refuses are counted, and
    the next line it allows says how many there were."""

    LINES = 10
    SECONDS = 60.0

    def __init__(self, lines: int = LINES, seconds: float = SECONDS) -> None:
        self.lines = lines
        self.seconds = seconds
        self.started = time.monotonic()
        self.used = 0
        self.suppressed = 0

    def take(self) -> int | None:
        """``None``: do not log. Otherwise log, and mention the returned number of lines
        left out since the last one (when it is not 0)."""
        now = time.monotonic()
        if now - self.started >= self.seconds:
            self.started, self.used = now, 0
        if self.used >= self.lines:
            self.suppressed += 1
            return None
        self.used += 1
        suppressed, self.suppressed = self.suppressed, 0
        return suppressed


class Registry:
    """The open, joined connections of this process, by page and by user.

    A page is one page load: its token's page id, which the fresh tokens that its joins
    hand out keep, so that a page cannot multiply its sockets by joining with the tokens
    its sockets received.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pages: dict[str, set[Hashable]] = {}  # page -> its connections
        self.users: dict[str, set[Hashable]] = {}  # user -> their connections
        self._where: dict[Hashable, tuple[str, str | None]] = {}  # connection -> page, user

    def admit(self, connection: Hashable, page: str, user: str | None) -> str | None:
        """Count ``connection`` for ``page`` and for ``user`` (``None``: not counted by
        user). Returns why not, when a cap is reached."""
        with self._lock:
            if connection in self._where:
                return None
            per_page = rt_settings.MAX_CONNECTIONS_PER_TOKEN
            if len(self.pages.get(page, ())) >= per_page:
                return f"this page already has {per_page} open connections"
            per_user = rt_settings.MAX_CONNECTIONS_PER_USER
            if user is not None and len(self.users.get(user, ())) >= per_user:
                return f"this user already has {per_user} open connections"
            self.pages.setdefault(page, set()).add(connection)
            if user is not None:
                self.users.setdefault(user, set()).add(connection)
            self._where[connection] = (page, user)
            return None

    def release(self, connection: Hashable) -> None:
        """``connection`` closed (idempotent)."""
        with self._lock:
            where = self._where.pop(connection, None)
            if where is None:
                return
            page, user = where
            self._discard(self.pages, page, connection)
            if user is not None:
                self._discard(self.users, user, connection)

    @staticmethod
    def _discard(groups: dict[str, set[Hashable]], name: str, connection: Hashable) -> None:
        members = groups.get(name)
        if members is not None:
            members.discard(connection)
            if not members:
                del groups[name]

    def __len__(self) -> int:
        with self._lock:
            return len(self._where)


#: The process's registry.
registry = Registry()

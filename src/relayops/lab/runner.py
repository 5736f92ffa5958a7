"""One small runner for every command the lab runs: logged, and failures say what failed."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence

from relayops.lab.errors import CommandError

log = logging.getLogger("relayops.lab")


class Runner:
    """Run commands with their argv logged; raise `CommandError` on a non-zero exit."""

    def __init__(self, *, logger: logging.Logger = log) -> None:
        self._log = logger

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input_text: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv`, capturing output; `env` entries are added to this process's environment."""
        self._log.debug("run: %s", " ".join(argv))
        full_env = {**os.environ, **env} if env is not None else None
        try:
            proc = subprocess.run(
                list(argv),
                input=input_text,
                capture_output=True,
                text=True,
                env=full_env,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise CommandError(argv, 127, f"{argv[0]}: not found ({exc})") from exc
        except subprocess.TimeoutExpired as exc:
            raise CommandError(argv, -1, f"timed out after {timeout} s") from exc
        if check and proc.returncode != 0:
            raise CommandError(argv, proc.returncode, proc.stderr or proc.stdout)
        return proc

    def ok(self, argv: Sequence[str]) -> bool:
        """True when `argv` exits 0 (for probes that may legitimately fail)."""
        return self.run(argv, check=False).returncode == 0

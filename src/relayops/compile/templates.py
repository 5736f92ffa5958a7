"""Jinja2 templates under `deploys/templates/`, mirroring each file's destination path.

Templates only substitute values computed in Python: undefined names are errors
(StrictUndefined), and nothing is HTML-escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from relayops.checkout import TEMPLATE_DIR

# The engine's own checkout: src/relayops/compile/templates.py -> repository root.
DEFAULT_TEMPLATE_DIR = TEMPLATE_DIR


class TemplateError(Exception):
    """A template is missing or uses a value the compiler does not provide."""


class Templates:
    """Renders `<destination path>.j2` from a template directory."""

    def __init__(self, directory: Path = DEFAULT_TEMPLATE_DIR) -> None:
        if not directory.is_dir():
            raise TemplateError(
                f"template directory {directory} does not exist; run relayops from its "
                "source checkout (deploys/templates/) or pass the directory explicitly"
            )
        self.directory = directory
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(directory)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, destination: str, **values: Any) -> bytes:
        """Render the template for absolute `destination` (e.g. /etc/postfix/main.cf)."""
        name = destination.lstrip("/") + ".j2"
        try:
            return self._env.get_template(name).render(**values).encode("utf-8")
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"no template {self.directory / name}") from exc
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {name}: {exc.message}") from exc

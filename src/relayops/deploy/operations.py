"""pyinfra operations of the relay deploy: write a file atomically, make a directory.

Both take the host's state read once before the deploy (`facts.PathStates`), so an
unchanged path costs no command. A file is written beside its destination with its
final owner and mode, then renamed over it: a daemon never reads half a file and a
private key is never readable by anyone else, not even for a moment.
"""

from __future__ import annotations

import io
import logging
import shlex
from collections.abc import Generator, Sequence
from pathlib import Path

from pyinfra.api.command import FileUploadCommand, StringCommand
from pyinfra.api.operation import operation
from pyinfra.context import host, state
from pyinfra.facts.files import FileContents
from pyinfra.operations.util.files import generate_color_diff

from relayops.compile.files import Directory
from relayops.deploy.state import Change

log = logging.getLogger("pyinfra")
TEMP_SUFFIX = ".relayops-new"


def _show_diff(change: Change) -> None:
    wanted = change.wanted
    if wanted.secret:
        log.info("  %s: secret content changes (not shown)", wanted.path)
        return
    current = host.get_fact(FileContents, path=wanted.path) or []
    try:
        desired = wanted.content.decode().splitlines()
    except UnicodeDecodeError:
        log.info("  %s: binary content changes", wanted.path)
        return
    for line in generate_color_diff(list(current), desired):
        log.info("  %s", line)


@operation()
def managed_file(change: Change) -> Generator[StringCommand | FileUploadCommand, None, None]:
    """Bring one file to its wanted content, owner and mode (the Change says what differs)."""
    wanted = change.wanted
    dest = shlex.quote(wanted.path)
    owner = f"{wanted.user}:{wanted.group}"
    mode = f"{wanted.mode:04o}"
    if change.content:
        if state.config.DIFF:
            _show_diff(change)
        temp = wanted.path + TEMP_SUFFIX
        quoted_temp = shlex.quote(temp)
        # Create the file with its final mode first: the upload then keeps that mode.
        yield StringCommand(f"install -m 0600 /dev/null {quoted_temp}")
        yield FileUploadCommand(io.BytesIO(wanted.content), temp)
        yield StringCommand(f"chown {owner} {quoted_temp} && chmod {mode} {quoted_temp}")
        yield StringCommand(f"mv -f {quoted_temp} {dest}")
        return
    if change.owner:
        yield StringCommand(f"chown {owner} {dest}")
    if change.mode:
        yield StringCommand(f"chmod {mode} {dest}")


@operation()
def managed_directory(directory: Directory) -> Generator[StringCommand, None, None]:
    """Create a directory (and parents) or fix its owner and mode."""
    yield StringCommand(directory_command(directory))


def directory_command(directory: Directory) -> str:
    """`install -d` with the exact mode: five octal digits, so the set-group-ID bit a
    directory inherits from its parent (Debian's /etc/redis is 2770) is cleared too. GNU
    install and chmod keep that bit on directories for a shorter numeric mode, and the
    next deploy would see 2750 where it wants 750 and apply the directory again."""
    return (
        f"install -d -o {directory.owner} -g {directory.group} -m {directory.mode:05o} "
        f"{shlex.quote(directory.path)}"
    )


@operation()
def upload_wheels(
    wheels: Sequence[Path], directory: str
) -> Generator[StringCommand | FileUploadCommand, None, None]:
    """Replace the host's wheel directory with exactly these wheels."""
    quoted = shlex.quote(directory)
    yield StringCommand(f"rm -rf {quoted} && install -d -m 0755 {quoted}")
    for wheel in wheels:
        yield FileUploadCommand(str(wheel), f"{directory}/{wheel.name}")

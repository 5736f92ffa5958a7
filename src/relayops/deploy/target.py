"""What one deploy works on: the repository, its inventory and the compiled host files.

The repository is the one the inventory file belongs to (`<repo>/inventory/<name>.py`);
`relayops deploy` passes it to pyinfra in RELAYOPS_REPO.
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from relayops.checkout import CHECKOUT
from relayops.compile import CompileError, HostConfig, compile_inventory
from relayops.compile.dkim import DkimKeyError, decrypt_secret
from relayops.compile.loading import load_frozen
from relayops.compile.templates import TemplateError
from relayops.deploy.errors import DeployError, InvalidRepository
from relayops.loader import inventory_names
from relayops.model import Inventory, Repo

REPO_ENV = "RELAYOPS_REPO"
# The target `relayops deploy` compiled, pickled for its pyinfra process: one compile.
TARGET_ENV = "RELAYOPS_TARGET"
IDENTITY_ENV = "RELAYOPS_AGE_IDENTITY"
LAB_INVENTORY = "lab"


@dataclass(frozen=True)
class Target:
    root: Path
    repo: Repo
    inventory: Inventory
    configs: dict[str, HostConfig]


def repo_of_inventory(inventory_file: Path) -> Path:
    """`<repo>/inventory/lab.py` -> `<repo>`; refuses a file outside an `inventory/` folder."""
    resolved = inventory_file.resolve()
    if resolved.parent.name != "inventory" or not resolved.is_file():
        raise DeployError(
            f"{inventory_file}: expected an inventory file inside a repository's inventory/ "
            "folder (for example inventory/lab.py)"
        )
    return resolved.parent.parent


def repo_root(env: Mapping[str, str], default: Path) -> Path:
    """RELAYOPS_REPO when set, else `default` (the repository holding the deploy)."""
    value = env.get(REPO_ENV)
    return Path(value).resolve() if value else default.resolve()


def load_target(root: Path, inventory_name: str) -> Target:
    """Validate and compile; any problem stops the deploy before a host is touched."""
    result = load_frozen(root)
    if result.repo is None:
        raise InvalidRepository(root, result.findings)
    repo = result.repo
    inventory = repo.inventories.get(inventory_name)
    if inventory is None:
        raise DeployError(
            f"{root}: no inventory {inventory_name!r}; known: {', '.join(sorted(repo.inventories))}"
        )
    try:
        configs = compile_inventory(repo, inventory)
    except (CompileError, TemplateError) as exc:
        raise DeployError(f"{root}: cannot compile inventory {inventory_name}: {exc}") from exc
    return Target(root=root, repo=repo, inventory=inventory, configs=configs)


@functools.cache
def cached_target(root: Path, inventory_name: str) -> Target:
    """pyinfra runs the deploy file once per host: compile once per process."""
    return load_target(root, inventory_name)


def save_target(target: Target, directory: Path) -> Path:
    """Pickle the compiled target for the pyinfra process `relayops deploy` starts.

    Pickle, not JSON: it is our own object for our own child process, in a private
    directory of the controller; nothing from outside is ever unpickled."""
    path = directory / "target.pickle"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        pickle.dump(target, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


@functools.cache
def _unpickled(path: str) -> Target:
    with open(path, "rb") as handle:
        target = pickle.load(handle)
    if not isinstance(target, Target):
        raise DeployError(f"{path} holds no compiled target")
    return target


def deploy_target(env: Mapping[str, str], groups: set[str]) -> Target:
    """The target of this pyinfra run: the one `relayops deploy` compiled (RELAYOPS_TARGET),
    else the repository (RELAYOPS_REPO, else this checkout) compiled here for the
    inventory whose name is one of the host's pyinfra groups (its file's stem)."""
    pickled = env.get(TARGET_ENV)
    if pickled:
        return _unpickled(pickled)
    root = repo_root(env, CHECKOUT)
    names = sorted(groups & set(inventory_names(root)))
    if len(names) != 1:
        raise DeployError(
            f"cannot tell which inventory of {root} this pyinfra run deploys (groups "
            f"{sorted(groups)}); run `relayops deploy --inventory NAME` or pass the "
            "repository's inventory/NAME.py to pyinfra"
        )
    return cached_target(root, names[0])


def identity_path(root: Path, inventory: Inventory, env: Mapping[str, str]) -> Path:
    """The age identity that decrypts `secrets/`: RELAYOPS_AGE_IDENTITY, else the
    inventory's `relayops_age_identity` (the lab names its own)."""
    value = env.get(IDENTITY_ENV)
    if value:
        return Path(value)
    if inventory.age_identity:
        given = Path(inventory.age_identity)
        return given if given.is_absolute() else root / given
    raise DeployError(
        f"set {IDENTITY_ENV} to the age identity file that decrypts {root}/secrets/ "
        f"(inventory {inventory.name} names no relayops_age_identity)"
    )


@functools.cache
def decrypted(root: Path, source: str, identity: Path) -> bytes:
    """Plaintext of one `secrets/` file, decrypted on the controller, kept in memory only."""
    try:
        return decrypt_secret(root / source, identity)
    except DkimKeyError as exc:
        raise DeployError(str(exc)) from exc


def environ() -> Mapping[str, str]:
    return os.environ

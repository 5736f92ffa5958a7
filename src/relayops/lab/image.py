"""The lab image: a Debian minbase from debootstrap plus the relay packages, cached.

The image is keyed by a hash of its suite, package list and build recipe, cached
as `/var/cache/relayops-lab/image-<key>.tar.zst` and unpacked once into
`rootfs-<key>/`, the read-only lower layer of every host's overlay root.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from relayops.lab.errors import MirrorNotFoundError
from relayops.lab.mounts import read_mounts, remove_tree, unmount_tree
from relayops.lab.runner import Runner
from relayops.lab.topology import CACHE_DIR

log = logging.getLogger("relayops.lab")

SUITE = "bookworm"
PACKAGES: tuple[str, ...] = (
    "openssh-server",
    "postfix",
    "opendkim",
    "opendkim-tools",
    "dovecot-imapd",
    "dovecot-lmtpd",  # notices into the customers' mailboxes (LMTP from Postfix)
    "redis-server",
    "python3",
    "python3-venv",
    "iproute2",
    "procps",
    "ca-certificates",
    "nsd",
)
# Bump when the build steps change in a way the package list does not show.
RECIPE_VERSION = 1
# Answers debconf would otherwise ask; the deploy rewrites main.cf anyway.
DEBCONF_SELECTIONS = """\
postfix postfix/main_mailer_type select Internet Site
postfix postfix/mailname string localhost
"""
# The image is built on the machine; these files must not carry its identity.
SSHD_LAB_CONF = """\
# relayops lab: root logs in with the lab key only, as in production.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
HostKey /etc/ssh/ssh_host_ed25519_key
"""


def image_key(*, suite: str = SUITE, packages: Sequence[str] = PACKAGES) -> str:
    """Cache key: changes exactly when the suite, the package list or the recipe changes."""
    blob = json.dumps(
        {"suite": suite, "packages": sorted(set(packages)), "recipe": RECIPE_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse_deb822_mirror(text: str, suite: str) -> str | None:
    """First `URIs` of a deb822 stanza of type deb whose Suites include `suite` itself."""
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split():
            uris = fields.get("uris", "").split()
            if uris:
                return uris[0]
    return None


def parse_list_mirror(text: str, suite: str) -> str | None:
    """First URI of a one-line `deb [options] URI suite components` entry for `suite`."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", "", line)
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb" and parts[2] == suite:
            return parts[1]
    return None


def find_mirror(*, suite: str = SUITE, apt_dir: Path = Path("/etc/apt")) -> str:
    """The machine's configured Debian mirror for `suite` (never a hard-coded host)."""
    for path in sorted(apt_dir.glob("sources.list.d/*.sources")):
        found = parse_deb822_mirror(path.read_text(), suite)
        if found:
            return found
    for path in [apt_dir / "sources.list", *sorted(apt_dir.glob("sources.list.d/*.list"))]:
        if path.is_file():
            found = parse_list_mirror(path.read_text(), suite)
            if found:
                return found
    raise MirrorNotFoundError(
        f"no APT source for suite {suite!r} in {apt_dir}/sources.list or sources.list.d/; "
        f"add one (e.g. a deb822 .sources file with `Suites: {suite}`)"
    )


@dataclass(frozen=True)
class Image:
    key: str
    cache_dir: Path = CACHE_DIR

    @property
    def tarball(self) -> Path:
        return self.cache_dir / f"image-{self.key}.tar.zst"

    @property
    def rootfs(self) -> Path:
        """The unpacked image (overlay lower dir); complete only when `.complete` exists in it."""
        return self.cache_dir / f"rootfs-{self.key}"

    @property
    def build_dir(self) -> Path:
        return self.cache_dir / f"build-{self.key}"

    @property
    def ready(self) -> bool:
        return (self.rootfs / ".relayops-complete").exists()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise image builds between processes (several test sessions share the cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _build_mounts(runner: Runner, root: Path) -> Iterator[None]:
    """proc and /dev inside the build chroot, for the packages' maintainer scripts."""
    try:
        runner.run(["mount", "-t", "proc", "proc", str(root / "proc")])
        runner.run(["mount", "--bind", "/dev", str(root / "dev")])
        runner.run(["mount", "--bind", "/dev/pts", str(root / "dev/pts")])
        yield
    finally:
        unmount_tree(runner, root / "proc")
        unmount_tree(runner, root / "dev")


def _build(
    runner: Runner,
    image: Image,
    *,
    suite: str,
    packages: Sequence[str],
    say: Callable[[str], None],
) -> None:
    say(f"image: debootstrap {suite} (first use only)")
    mirror = find_mirror(suite=suite)
    root = image.build_dir / "rootfs"
    remove_tree(runner, image.build_dir)
    root.mkdir(parents=True)
    started = time.monotonic()
    runner.run(["debootstrap", "--variant=minbase", suite, str(root), mirror], timeout=1200)
    log.info("debootstrap %s from %s: %.1f s", suite, mirror, time.monotonic() - started)

    say("image: packages")
    started = time.monotonic()
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# relayops lab image build: start no service\nexit 101\n")
    policy.chmod(0o755)
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    (root / "tmp/debconf.sel").write_text(DEBCONF_SELECTIONS)
    env = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    with _build_mounts(runner, root):
        chroot = ["chroot", str(root)]
        runner.run([*chroot, "debconf-set-selections", "/tmp/debconf.sel"], env=env)
        runner.run([*chroot, "apt-get", "update"], env=env, timeout=1200)
        runner.run(
            [*chroot, "apt-get", "install", "-y", "--no-install-recommends", *packages],
            env=env,
            timeout=1800,
        )
        runner.run([*chroot, "apt-get", "clean"], env=env)
        # Debian's postinst wrote the build machine's name; let Postfix ask the host's UTS name.
        runner.run([*chroot, "postconf", "-X", "myhostname"], check=False)
    log.info("packages: %.1f s", time.monotonic() - started)

    policy.unlink()
    (root / "tmp/debconf.sel").unlink()
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # every host gets its own host key at `lab up`
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (root / "etc/resolv.conf").write_text("")
    (root / "etc/hostname").write_text("")
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config.d/relayops-lab.conf").write_text(SSHD_LAB_CONF)

    say("image: pack")
    started = time.monotonic()
    partial = image.tarball.with_suffix(".partial")
    runner.run(
        ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(root),
         "-I", "zstd -T0 -3", "-cf", str(partial), "."]
    )  # fmt: skip
    partial.rename(image.tarball)
    log.info("packed %s: %.1f s", image.tarball, time.monotonic() - started)


def _unpack(runner: Runner, image: Image) -> None:
    started = time.monotonic()
    staging = image.cache_dir / f"unpack-{image.key}"
    remove_tree(runner, staging)
    staging.mkdir(parents=True)
    runner.run(
        ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(staging),
         "-I", "zstd", "-xpf", str(image.tarball)]
    )  # fmt: skip
    (staging / ".relayops-complete").write_text(image.key + "\n")
    remove_tree(runner, image.rootfs)
    staging.rename(image.rootfs)
    log.info("unpacked %s: %.1f s", image.tarball, time.monotonic() - started)


def ensure_image(
    runner: Runner,
    *,
    suite: str = SUITE,
    packages: Sequence[str] = PACKAGES,
    cache_dir: Path = CACHE_DIR,
    on_phase: Callable[[str], None] | None = None,
) -> Image:
    """Build (if no tarball for this key) and unpack (if not yet) the image; return it."""
    say = on_phase or (lambda _phase: None)
    image = Image(key=image_key(suite=suite, packages=packages), cache_dir=cache_dir)
    with _locked(cache_dir / ".lock"):
        if image.ready:
            return image
        if not image.tarball.exists():
            _build(runner, image, suite=suite, packages=packages, say=say)
        say("image: unpack")
        _unpack(runner, image)
        remove_tree(runner, image.build_dir)
        _prune(runner, keep=image)
    return image


def _prune(runner: Runner, *, keep: Image) -> None:
    """Delete other keys' unpacked images that no mounted overlay still uses."""
    in_use = " ".join(m.super_options for m in read_mounts() if m.fstype == "overlay")
    for path in keep.cache_dir.glob("rootfs-*"):
        if path != keep.rootfs and str(path) not in in_use:
            remove_tree(runner, path)

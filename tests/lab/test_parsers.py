"""Pure parsers of the lab: APT sources, mountinfo, ip(8) output, image key."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayops.lab.errors import MirrorNotFoundError
from relayops.lab.image import (
    PACKAGES,
    find_mirror,
    image_key,
    parse_deb822_mirror,
    parse_list_mirror,
)
from relayops.lab.mounts import mounts_under, parse_mountinfo
from relayops.lab.netns import parse_link_names, parse_netns_list

DEB822 = """\
Types: deb
# http://deb.example.org/archive/debian/20250520T000000Z
URIs: http://deb.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.example.org/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_mirror_is_the_suite_stanza_not_security() -> None:
    assert parse_deb822_mirror(DEB822, "bookworm") == "http://deb.example.org/debian"
    assert parse_deb822_mirror(DEB822, "trixie") is None


def test_deb822_disabled_stanza_is_skipped() -> None:
    text = "Enabled: no\nTypes: deb\nURIs: http://a/\nSuites: bookworm\n\n" + DEB822
    assert parse_deb822_mirror(text, "bookworm") == "http://deb.example.org/debian"


def test_one_line_sources() -> None:
    text = (
        "# deb http://old/ bookworm main\n"
        "deb-src http://src/ bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
    )
    assert parse_list_mirror(text, "bookworm") == "http://m.example/debian"


def test_find_mirror_reads_the_apt_directory(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(MirrorNotFoundError, match="no APT source for suite"):
        find_mirror(apt_dir=tmp_path)
    (tmp_path / "sources.list.d/debian.sources").write_text(DEB822)
    assert find_mirror(apt_dir=tmp_path) == "http://deb.example.org/debian"


def test_image_key_follows_packages_and_suite_only() -> None:
    assert image_key() == image_key(packages=list(reversed(PACKAGES)))
    assert image_key() != image_key(packages=[*PACKAGES, "swaks"])
    assert image_key() != image_key(suite="trixie")


MOUNTINFO = r"""22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:40 / /var/lib/relayops-lab/relay1/root rw shared:5 - overlay overlay rw,lowerdir=/x
31 30 0:41 / /var/lib/relayops-lab/relay1/root/proc rw - proc proc rw
32 30 0:5 / /var/lib/relayops-lab/relay1/root/dev rw - devtmpfs udev rw
33 32 0:6 / /var/lib/relayops-lab/relay1/root/dev/pts rw - devpts devpts rw
34 22 0:42 / /var/lib/relayops-lab1/ns/root rw - overlay overlay rw
35 22 0:43 / /mnt/with\040space rw - tmpfs tmpfs rw
"""


def test_mountinfo_unescapes_and_keeps_fields() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mounts[-1].mount_point == "/mnt/with space"
    assert mounts[1].fstype == "overlay" and mounts[1].super_options == "rw,lowerdir=/x"


def test_mounts_under_is_deepest_first_and_scoped() -> None:
    found = mounts_under(Path("/var/lib/relayops-lab"), parse_mountinfo(MOUNTINFO))
    assert found[0] == "/var/lib/relayops-lab/relay1/root/dev/pts"
    assert found[-1] == "/var/lib/relayops-lab/relay1/root"
    assert "/var/lib/relayops-lab1/ns/root" not in found  # another lab instance


def test_ip_output_parsers() -> None:
    assert parse_netns_list("rlylab0-ns (id: 0)\nrlylab0-isp\n") == ["rlylab0-ns", "rlylab0-isp"]
    links = "1: lo: <LOOPBACK,UP>\n7: rl0-ns@if2: <BROADCAST> mtu 1500\n8: rlylab0: <UP>\n"
    assert parse_link_names(links) == ["lo", "rl0-ns", "rlylab0"]

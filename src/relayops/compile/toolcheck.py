"""Have the real daemons check a compiled host: `postfix check`, `postconf -n`,
`opendkim -n`, `doveconf -n`, run on a copy of the tree staged in a scratch directory.

Staging rewrites absolute /etc and /var paths into the scratch directory, indexes the
maps with postmap/postalias, and adds what the host would have but the repository does
not: a throw-away TLS certificate and DKIM keys (never the real ones), a queue directory.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from relayops.backoff.names import INSTANCE_PREFIX
from relayops.certs import self_signed
from relayops.compile.files import HostConfig, MapCommand
from relayops.compile.postfix import MAP_TYPE
from relayops.hostlayout import TLS_CERT, TLS_KEY

_ABSOLUTE = re.compile(r"(?<![\w./-])/(etc|var|run)/")


class ToolMissing(Exception):
    """A checker is not installed: apt-get install postfix opendkim dovecot-core."""


@dataclass(frozen=True)
class ToolResult:
    tool: str
    command: list[str]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        # Postfix reports problems as warnings with exit status 0.
        return self.returncode == 0 and "warning" not in self.output.lower()


def relocate(text: bytes, scratch: Path) -> bytes:
    """Point absolute /etc, /var and /run paths of a config file into `scratch`."""
    return _ABSOLUTE.sub(lambda m: f"{scratch}/{m.group(1)}/", text.decode("utf-8")).encode()


def stage(config: HostConfig, scratch: Path, *, key: rsa.RSAPrivateKey | None = None) -> Path:
    """Write the host's files under `scratch` (relocated) with stand-in TLS and DKIM keys."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for item in config.files:
        target = scratch / item.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(relocate(item.content, scratch))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    for secret in config.secrets:
        target = scratch / secret.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(key_pem)
        target.chmod(0o600)
    cert_path = scratch / TLS_CERT.lstrip("/")
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_pem, tls_key_pem = self_signed(config.fqdn, days=2)
    cert_path.write_bytes(cert_pem)
    (scratch / TLS_KEY.lstrip("/")).write_bytes(tls_key_pem)
    (scratch / TLS_KEY.lstrip("/")).chmod(0o600)
    main_cf = scratch / "etc/postfix/main.cf"
    with main_cf.open("a", encoding="utf-8") as handle:
        # Scaffolding a packaged host has by default; kept out of the rendered file.
        handle.write(
            f"queue_directory = {scratch}/var/spool/postfix\n"
            f"data_directory = {scratch}/var/lib/postfix\n"
        )
    (scratch / "var/lib/postfix").mkdir(parents=True, exist_ok=True)
    (scratch / "var/spool/postfix").mkdir(parents=True, exist_ok=True)
    for instance in _instance_dirs(scratch):
        # An output instance names its own queue and data directories (relocated above).
        for parameter in ("queue_directory", "data_directory"):
            Path(_postconf_value(instance, parameter)).mkdir(parents=True, exist_ok=True)
        # Its maillog_file, relocated, is outside the prefixes Postfix allows (/var), which
        # only the default main.cf may widen: the check logs to syslog instead.
        _run_ok(["postconf", "-c", str(instance), "-e", "maillog_file="])
    for item in config.files:
        if item.map_command is not None:
            _run_ok(
                [item.map_command.value, "-c", str(scratch / "etc/postfix"),
                 f"{MAP_TYPE}:{scratch}{item.path}"]
            )  # fmt: skip
    return scratch


def _binary(name: str) -> str:
    for folder in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if Path(folder, name).exists():
            return str(Path(folder, name))
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} is not installed (Debian: postfix, opendkim, dovecot-core)")
    return found


def _run(tool: str, args: list[str]) -> ToolResult:
    command = [_binary(args[0]), *args[1:]]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    return ToolResult(tool, command, proc.returncode, (proc.stdout + proc.stderr).strip())


def _run_ok(args: list[str]) -> None:
    result = _run(args[0], args)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(result.command)} failed: {result.output}")


def _instance_dirs(scratch: Path) -> list[Path]:
    """The staged output instances' configuration directories (compile/instances.py)."""
    return sorted(p for p in (scratch / "etc").glob(f"{INSTANCE_PREFIX}*") if p.is_dir())


def _postconf_value(config_dir: Path, key: str) -> str:
    result = _run("postconf -h", ["postconf", "-c", str(config_dir), "-h", key])
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(result.command)} failed: {result.output}")
    return result.output.strip()


def _check_postfix(config_dir: Path, label: str) -> list[ToolResult]:
    """`postfix check` and `postconf -n` of one instance; postconf -n output is not an error."""
    postconf = _run(f"postconf -n{label}", ["postconf", "-c", str(config_dir), "-n"])
    # postconf prints the settings on stdout; only stderr lines are findings.
    postconf_findings = "\n".join(
        line for line in postconf.output.splitlines() if "warning" in line.lower()
    )
    return [
        _run(f"postfix check{label}", ["postfix", "-c", str(config_dir), "check"]),
        ToolResult(postconf.tool, postconf.command, postconf.returncode, postconf_findings),
    ]


def check_staged(scratch: Path) -> list[ToolResult]:
    """Run each daemon's own checker on a staged tree: Postfix once per instance."""
    results = _check_postfix(scratch / "etc/postfix", "")
    for instance in _instance_dirs(scratch):
        results += _check_postfix(instance, f" ({instance.name})")
    return [
        *results,
        _run("opendkim -n", ["opendkim", "-n", "-x", str(scratch / "etc/opendkim.conf")]),
        _doveconf(scratch),
    ]


def _doveconf(scratch: Path) -> ToolResult:
    result = _run(
        "doveconf -n", ["doveconf", "-c", str(scratch / "etc/dovecot/dovecot.conf"), "-n"]
    )
    findings = "\n".join(
        line
        for line in result.output.splitlines()
        if "warning" in line.lower() or "error" in line.lower()
    )
    return ToolResult(result.tool, result.command, result.returncode, findings)


def check_host(config: HostConfig, scratch: Path) -> list[ToolResult]:
    """Stage `config` in the (empty) directory `scratch` and run every checker."""
    return check_staged(stage(config, scratch))


__all__ = ["MapCommand", "ToolMissing", "ToolResult", "check_host", "relocate", "stage"]

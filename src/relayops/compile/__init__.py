"""The compiler: a validated repository -> the files of every relay host (HostConfig)."""

from relayops.compile.files import Directory, HostConfig, ManagedFile, SecretFile
from relayops.compile.host import CompileError, compile_host, compile_inventory

__all__ = [
    "CompileError",
    "Directory",
    "HostConfig",
    "ManagedFile",
    "SecretFile",
    "compile_host",
    "compile_inventory",
]

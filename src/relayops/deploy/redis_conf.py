"""Redis and Sentinel configuration for the shared counters: users, TLS, listening addresses.

Pure: values in, text out (deploys/templates/etc/redis/*.j2 substitute them). Three
ACL users, each with only what it needs (https://redis.io/docs/management/security/acl/,
"Sentinel and replicas ACL rules"); the default user is off:

- relayops-policyd: the daemon's commands, and those its Lua script calls (ACL checks
  commands run by a script too), on ``relayops:*`` keys only;
- relayops-replica: what a replica sends its primary;
- relayops-sentinel: what Sentinel sends the data nodes; on the sentinels, the same user
  authenticates sentinel to sentinel.

The users live in ACL files (``aclfile``), not in redis.conf/sentinel.conf: Sentinel
rewrites those (CONFIG REWRITE, on every failover) and would copy ``user`` lines into
them, which then clash with the deployed ones at the next start ("Duplicate user").
ACL files hold only SHA-256 hashes of the passwords (``#<hex>``); plaintext is needed
where Redis must authenticate itself (``masterauth``, ``sentinel auth-pass``), in files
of mode 600.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

POLICYD_USER = "relayops-policyd"
REPLICA_USER = "relayops-replica"
SENTINEL_USER = "relayops-sentinel"
USERS = (POLICYD_USER, REPLICA_USER, SENTINEL_USER)
MASTER_NAME = "relayops"
SENTINEL_PORT = 26379

# resp.py + store_redis.py send these; CHARGE_LUA calls the second line's.
POLICYD_COMMANDS = (
    "ping", "select", "role", "script|load", "evalsha", "wait",
    "exists", "get", "incr", "expire", "set",
    "incrby", "decrby", "pexpire",  # quota credit (policyd/credit.py)
    "lpop",  # the notice outbox (store_redis.take_outbox)
)  # fmt: skip
# Tools (set_flag/clear_flag) use the same user for the complaint flags; so do the
# feedback ledger (policyd/ledger_redis.py: its APPLY/PRUNE scripts, tallies,
# suppressions, audit list), the daemon's suppression poller and feedback metrics, and
# the relay's `relayops feedback ingest`.
POLICYD_TOOL_COMMANDS = (
    "del", "eval", "scan", "hget", "hgetall", "hset", "hdel", "hincrby",
    "lpush", "ltrim", "lrange",
    "rpush",  # outbox.queue_notice
)  # fmt: skip
REPLICA_COMMANDS = ("psync", "replconf", "ping")
SENTINEL_COMMANDS = (
    "multi", "exec", "slaveof", "replicaof", "ping", "subscribe", "publish", "info", "role",
    "config|rewrite", "client|setname", "client|kill", "script|kill",
)  # fmt: skip
# On the sentinels: the daemon only asks where the primary is; redis-py's Sentinel
# client (the flag tools) asks SENTINEL MASTERS.
POLICYD_SENTINEL_COMMANDS = ("ping", "sentinel|get-master-addr-by-name", "sentinel|masters")


@dataclass(frozen=True)
class RedisPasswords:
    """One password per user, decrypted from secrets/redis/<user>.password.age."""

    policyd: str
    replica: str
    sentinel: str

    def __repr__(self) -> str:
        return "RedisPasswords(***)"


def password_hash(password: str) -> str:
    """The form ``user … #<sha256>`` takes, so redis.conf holds no plaintext."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def _user(name: str, password: str, rules: str) -> str:
    return f"user {name} on {password_hash(password)} resetchannels {rules}"


ACL_FILE = "/etc/redis/relayops-users.acl"
SENTINEL_ACL_FILE = "/etc/redis/relayops-sentinel-users.acl"


def acl_file(users: list[str]) -> str:
    return "".join(line + "\n" for line in users)


def data_node_users(passwords: RedisPasswords) -> list[str]:
    """The ACL file of every data node (primary and replicas alike)."""
    daemon = " ".join(f"+{c}" for c in POLICYD_COMMANDS + POLICYD_TOOL_COMMANDS)
    replica = " ".join(f"+{c}" for c in REPLICA_COMMANDS)
    sentinel = " ".join(f"+{c}" for c in SENTINEL_COMMANDS)
    return [
        # Off: no client can be or become `default`. Its permissions still matter: Redis 7.0
        # replays an AOF's MULTI/EXEC (every multi-write script) as `default` and checks
        # them; with none, a restart silently dropped the counts of each script's first
        # write (tests/policyd/test_redis_acl_tls.py, redis-server 7.0.15).
        "user default off ~* &* +@all",
        _user(POLICYD_USER, passwords.policyd, f"resetkeys ~relayops:* -@all {daemon}"),
        _user(REPLICA_USER, passwords.replica, f"-@all {replica}"),
        # Sentinel publishes and subscribes on __sentinel__:hello.
        _user(SENTINEL_USER, passwords.sentinel, f"&__sentinel__:* -@all {sentinel}"),
    ]


def sentinel_users(passwords: RedisPasswords) -> list[str]:
    """The sentinels' ACL file: the daemon asks, sentinels talk to each other."""
    daemon = " ".join(f"+{c}" for c in POLICYD_SENTINEL_COMMANDS)
    return [
        # Off: no client can be or become `default`. Its permissions still matter: Redis 7.0
        # replays an AOF's MULTI/EXEC (every multi-write script) as `default` and checks
        # them; with none, a restart silently dropped the counts of each script's first
        # write (tests/policyd/test_redis_acl_tls.py, redis-server 7.0.15).
        "user default off ~* &* +@all",
        _user(POLICYD_USER, passwords.policyd, f"-@all {daemon}"),
        _user(SENTINEL_USER, passwords.sentinel, "&* +@all"),
    ]


@dataclass(frozen=True)
class TlsFiles:
    cert: str
    key: str
    ca: str


@dataclass(frozen=True)
class DataNode:
    """One Redis of the counters: its addresses, ports, TLS, and whom it replicates."""

    bind: Sequence[str]
    port: int  # 0: no plaintext port
    tls_port: int  # 0: no TLS port
    tls: TlsFiles | None
    replica_of: tuple[str, int] | None  # initial primary; Sentinel moves it afterwards
    announce: str | None = None  # the address other nodes and the daemons reach it on
    aclfile: str = ACL_FILE


def _listener_values(node: DataNode | SentinelNode) -> dict[str, object]:
    """What both templates take alike: where the node listens, its TLS, ACL file, address."""
    return {
        "bind": " ".join(node.bind),
        "port": node.port,
        "tls_port": node.tls_port,
        "tls": node.tls,
        "aclfile": node.aclfile,
        "announce": node.announce,
    }


def data_node_values(node: DataNode, passwords: RedisPasswords) -> dict[str, object]:
    """Values of etc/redis/relayops.conf.j2."""
    return {
        **_listener_values(node),
        "replica_of": f"{node.replica_of[0]} {node.replica_of[1]}" if node.replica_of else None,
        "replica_user": REPLICA_USER,
        "replica_password": passwords.replica,
    }


@dataclass(frozen=True)
class SentinelNode:
    bind: Sequence[str]
    port: int
    tls_port: int
    tls: TlsFiles | None
    primary: tuple[str, int]  # the initial primary
    quorum: int
    announce: str | None = None
    down_after_ms: int = 5000
    failover_timeout_ms: int = 60000
    aclfile: str = SENTINEL_ACL_FILE
    master: str = MASTER_NAME  # the name daemons ask the sentinels for (the URL's /MASTER)


def sentinel_values(node: SentinelNode, passwords: RedisPasswords) -> dict[str, object]:
    """Values of etc/redis/relayops-sentinel.conf.j2."""
    return {
        **_listener_values(node),
        "master": node.master,
        "primary": f"{node.primary[0]} {node.primary[1]}",
        "quorum": node.quorum,
        "sentinel_user": SENTINEL_USER,
        "sentinel_password": passwords.sentinel,
        "down_after_ms": node.down_after_ms,
        "failover_timeout_ms": node.failover_timeout_ms,
    }

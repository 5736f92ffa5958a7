"""Postfix output instances: one per sending IP, each with a transport per ISP class.

Why instances (docs/throttling.md): a throttled transport must depend on the sender
(which IP) *and* the recipient (which ISP class), and one Postfix routes by one or
the other: `transport_maps` (recipient) overrides `sender_dependent_default_transport_maps`,
a `FILTER` (sender) moves the whole message to one transport. So the submission
instance hands each message, by sender, to the output instance of its IP over
loopback SMTP; the output instance binds to that IP, says HELO with its PTR name and
splits recipients by class through its own `transport_maps`, each class a transport
with its own limits. Each instance has its own queue manager, so the limits of one IP
never slow down another.

Names follow postmulti(1): the instance `postfix-<egress>` has its configuration in
/etc/postfix-<egress>, its queue in /var/spool/postfix-<egress>, its state in
/var/lib/postfix-<egress>; the submission (default) instance lists the directories in
`multi_instance_directories` so `postfix start|stop` and Debian's init script manage all.
"""

from __future__ import annotations

from dataclasses import dataclass

from relayops.backoff.names import CLASS_PREFIX, INSTANCE_PREFIX, instance_log, socketmap_table
from relayops.compile.files import Directory, ManagedFile, MapCommand
from relayops.compile.placement import Egress, host_egresses
from relayops.compile.templates import Templates
from relayops.hostlayout import DKIM_MILTER_POSTFIX
from relayops.model import IspClass, RelayHost, Repo

# Loopback ports of the output instances' smtpd, by the egress's position on the host.
# Only the submission instance connects there (mynetworks = 127.0.0.1/32 of each instance).
HANDOFF_ADDRESS = "127.0.0.1"
HANDOFF_BASE_PORT = 10101
# The submission instance's smtp(8) transport towards the output instances.
HANDOFF_TRANSPORT = "relayops-handoff"
# An instance's service name, as Debian's systemd template unit postfix@.service has it.
INSTANCE_SERVICE_PREFIX = "postfix@"
# Template names: one set for every instance (the destination directory varies).
TEMPLATE_DIR = "/etc/postfix-instance"
# The handoff adds a Received: header and the submission instance already refused
# anything over the limit: the output instance allows a margin so it never refuses it.
HANDOFF_SIZE_MARGIN = 1_048_576
DEFAULT_CACHE_TTL_LIMIT = 2  # postconf(5) connection_cache_ttl_limit


@dataclass(frozen=True)
class ClassTransport:
    """One ISP class as an output instance's smtp(8) transport; None: Postfix's default."""

    name: str
    concurrency: int
    rate_delay_seconds: int
    recipient_limit: int | None
    failed_cohort_limit: int | None
    negative_feedback: str | None
    # smtp_connection_reuse_count_limit (N reuses = N+1 messages); None: unlimited.
    reuse_count_limit: int | None
    cache_on_demand: bool  # False: one message per connection
    # With a short rate delay: the class's domains are cached permanently, idle connections
    # kept this long (the delay + 1 s), so the pause is not followed by a new handshake.
    cache_destinations: tuple[str, ...] = ()
    cache_time_limit: int | None = None


def config_dir(instance: str) -> str:
    """An instance's configuration directory (postmulti's convention, /etc/<name>)."""
    return f"/etc/{instance}"


@dataclass(frozen=True)
class OutputInstance:
    name: str  # postfix-ip-dedicated-1
    egress: Egress
    port: int  # its smtpd on HANDOFF_ADDRESS

    @property
    def config_dir(self) -> str:
        return config_dir(self.name)

    @property
    def queue_dir(self) -> str:
        return f"/var/spool/{self.name}"

    @property
    def data_dir(self) -> str:
        return f"/var/lib/{self.name}"

    @property
    def listen(self) -> str:
        """Its smtpd's master.cf service name: the loopback address and port."""
        return f"{HANDOFF_ADDRESS}:{self.port}"

    @property
    def nexthop(self) -> str:
        """Where the submission instance delivers this instance's mail."""
        return f"[{HANDOFF_ADDRESS}]:{self.port}"

    @property
    def handoff(self) -> str:
        """`transport:nexthop` for default_transport or a FILTER action."""
        return f"{HANDOFF_TRANSPORT}:{self.nexthop}"

    @property
    def transport_map(self) -> str:
        return f"{self.config_dir}/transport"

    @property
    def maillog(self) -> str:
        """Its maillog_file (postlogd): read by `relayops warmup` and the back-off watcher."""
        return instance_log(self.name)

    @property
    def backoff_table(self) -> str:
        """The back-off socketmap its transport_maps asks before its class table."""
        return socketmap_table(self.name)


def output_instances(host: RelayHost) -> list[OutputInstance]:
    """The host's output instances, one per egress, sorted by name.

    Ports follow the egress order: adding an IP may move later instances' ports; the
    deploy then reloads those instances and the submission instance together.
    """
    return [
        OutputInstance(f"{INSTANCE_PREFIX}{egress.transport}", egress, HANDOFF_BASE_PORT + i)
        for i, egress in enumerate(host_egresses(host))
    ]


def instance_for(host: RelayHost, egress: Egress) -> OutputInstance:
    return next(i for i in output_instances(host) if i.egress == egress)


def class_transport(name: str, cls: IspClass) -> ClassTransport:
    reuse = cls.messages_per_connection
    return ClassTransport(
        name=f"{CLASS_PREFIX}{name}",
        concurrency=cls.concurrency,
        rate_delay_seconds=cls.rate_delay_seconds,
        recipient_limit=cls.recipients_per_message,
        failed_cohort_limit=cls.failed_cohort_limit,
        negative_feedback=cls.back_off.negative_feedback,
        reuse_count_limit=None if reuse is None or reuse == 1 else reuse - 1,
        cache_on_demand=reuse != 1,
        cache_destinations=tuple(cls.domains) if cls.keeps_connection else (),
        cache_time_limit=cls.rate_delay_seconds + 1 if cls.keeps_connection else None,
    )


def class_transports(classes: dict[str, IspClass]) -> list[ClassTransport]:
    return [class_transport(name, classes[name]) for name in sorted(classes)]


def class_rows(classes: dict[str, IspClass]) -> list[tuple[str, str]]:
    """`domain  isp-<class>:` for the output instances' transport_maps."""
    rows = [
        (domain, f"{CLASS_PREFIX}{name}:")
        for name, cls in classes.items()
        for domain in cls.domains
    ]
    return sorted(rows)


def cache_ttl_limit(transports: list[ClassTransport]) -> int:
    """scache(8)'s connection_cache_ttl_limit: Postfix's 2 s, or the longest a class keeps."""
    return max([DEFAULT_CACHE_TTL_LIMIT, *(t.cache_time_limit or 0 for t in transports)])


def message_size_limit(submission_limit: int) -> int:
    return submission_limit + HANDOFF_SIZE_MARGIN


def instance_files(
    repo: Repo, host: RelayHost, templates: Templates, *, submission_size_limit: int
) -> tuple[list[ManagedFile], list[Directory]]:
    """main.cf, master.cf and transport of every output instance, and their directories."""
    files: list[ManagedFile] = []
    directories: list[Directory] = []
    transports = class_transports(repo.throttling)
    rows = class_rows(repo.throttling)
    for instance in output_instances(host):
        reload = instance_daemon(instance)
        values = {
            "instance": instance,
            "service_domain": repo.service.domain,
            "myhostname": instance.egress.ip.ptr,
            "bind_address": str(instance.egress.ip.address),
            "helo_name": instance.egress.ip.ptr,
            "message_size_limit": message_size_limit(submission_size_limit),
            "transports": transports,
            "cache_ttl_limit": cache_ttl_limit(transports),
            "dkim_milter": DKIM_MILTER_POSTFIX,
        }
        for name in ("main.cf", "master.cf"):
            content = templates.render(f"{TEMPLATE_DIR}/{name}", **values)
            files.append(
                ManagedFile(f"{instance.config_dir}/{name}", content, 0o644, "root", "root", reload)
            )
        transport = templates.render(f"{TEMPLATE_DIR}/transport", rows=rows)
        files.append(
            ManagedFile(
                instance.transport_map,
                transport,
                0o644,
                "root",
                "root",
                reload,
                MapCommand.POSTMAP,
            )
        )
        # postfix(1) creates the queue's subdirectories at start; the roots must exist.
        directories.append(Directory(instance.config_dir, 0o755, "root", "root"))
        directories.append(Directory(instance.queue_dir, 0o755, "root", "root"))
        directories.append(Directory(instance.data_dir, 0o700, "postfix", "postfix"))
    return files, directories


def instance_daemon(instance: OutputInstance) -> str:
    """The service name the deploy reloads when this instance's files change."""
    return f"{INSTANCE_SERVICE_PREFIX}{instance.name}"

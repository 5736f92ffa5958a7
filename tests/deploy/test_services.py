"""Service decisions and commands, for hosts with and without systemd."""

from __future__ import annotations

from relayops.deploy.services import control_command, control_verb, service_actions

ORDER = ["redis-server", "opendkim", "dovecot", "relayops-policyd", "postfix"]
ALL_RUNNING = dict.fromkeys(ORDER, True)


def test_nothing_changed_touches_nothing() -> None:
    assert service_actions(ORDER, ALL_RUNNING, [], new_code=False) == []


def test_stopped_services_start_in_order_and_changed_ones_reload() -> None:
    running = {**ALL_RUNNING, "redis-server": False, "postfix": False}
    got = service_actions(ORDER, running, ["opendkim", "postfix"], new_code=False)
    assert got == [("redis-server", "start"), ("opendkim", "reload"), ("postfix", "start")]


def test_only_the_policy_daemon_restarts_and_only_for_new_code() -> None:
    got = service_actions(ORDER, ALL_RUNNING, ["postfix"], new_code=True)
    assert got == [("relayops-policyd", "restart"), ("postfix", "reload")]
    stopped = {**ALL_RUNNING, "relayops-policyd": False}
    assert service_actions(ORDER, stopped, [], new_code=True) == [("relayops-policyd", "start")]


def test_systemd_hosts_use_systemctl() -> None:
    # postfix@- is the submission instance alone; `postfix` would reload every instance.
    assert control_command("postfix", "reload", systemd=True) == "systemctl reload postfix@-"
    assert control_command("postfix", "start", systemd=True) == "systemctl start postfix"


def test_init_script_output_goes_to_a_log_not_the_ssh_session() -> None:
    command = control_command("dovecot", "start", systemd=False)
    assert (
        "/etc/init.d/dovecot start </dev/null >>/var/log/relayops/init-dovecot.log 2>&1" in command
    )
    assert command.endswith("exit $rc")


def test_redis_restarts_where_others_reload() -> None:
    assert control_verb("redis-server", "reload") == "restart"
    assert control_verb("redis-server", "start") == "start"
    assert control_verb("postfix", "reload") == "reload"


def test_the_policy_daemon_restarts_for_new_code_or_a_new_ca_only() -> None:
    from relayops.deploy.services import policyd_restarts

    assert policyd_restarts(["/etc/relayops/tls/ca.pem"], new_code=False) is True
    assert policyd_restarts(["/etc/relayops/tls/fullchain.pem"], new_code=False) is False
    assert policyd_restarts([], new_code=True) is True
    assert policyd_restarts([], new_code=False) is False

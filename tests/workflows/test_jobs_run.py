"""The GitHub workflows' jobs, run step by step as a hosted runner would, against the lab.

GitHub cannot run here, so tests/workflows/hosted.py plays the runner: a Debian 12
chroot with an unprivileged `runner` (sudo, git, make, Python 3.11) for runner jobs, and
a bare debian:12 root for `container: debian:12` jobs, run as root. Each job gets a new
workspace; its `run:` steps run in order with their `env:` and `if:`, `$GITHUB_ENV` is
carried between steps, `actions/checkout` is a `git fetch` of the commit under test,
artifacts are copied between jobs, and `gh` is a fake that records its calls.

What differs from production, on purpose:
- The inventory: every `--inventory production` / `inventory/production.py` in a step's
  command is replaced by the lab's (`jobsteps.retarget`); nothing else is changed, and
  the test asserts that no step still names production after that.
- The secrets: DEPLOY_SSH_KEY is the lab's SSH key and RELAYOPS_AGE_IDENTITY the lab's
  age identity (lab/age-identity.lab-only.txt). The lab inventory names its key at
  /var/lib/relayops-lab/ssh/id_ed25519: in the container that path is a link to
  ~/.ssh/id_ed25519, which only `make ci-secrets` writes, so the deploy authenticates
  with the key the secret delivered (and fails without it).
- The lab CA (/var/lib/relayops-lab/ca) is bound into the container: the lab's
  certificates come from it where production's come from ACME on the hosts.
- `ci.yml`'s `test` job (`make test`: the whole suite, with the lab) is not run here.

Run as root, under the lab lock:
    flock /tmp/relayops-lab-session.lock pytest tests/workflows/test_jobs_run.py -s
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from relayops.deploy.target import load_target
from relayops.lab.dns import reverse_zone
from relayops.lab.publish import publishable
from support.lab import Lab
from workflows.hosted import Event, JobRun, Machine, Workflows, gh_calls, roots
from workflows.jobsteps import load_jobs, production_mentions, retarget

# The lab fixture comes from the tests/support plugin.
LAB_IDENTITY = "lab/age-identity.lab-only.txt"  # inventory/lab.py names it too

pytestmark = pytest.mark.lab

# The checkout this test runs from is the repository under test (a worktree, or CI's).
ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
LAB_STATE = Path("/var/lib/relayops-lab")
CANARY, OTHER = "relay1.relay.example.net", "relay2.relay.example.net"
PR_BRANCH = "pr/hooli-business"
MARKER = "<!-- relayops-plan -->"
DRIFT = "# added by hand on relay1: drift (tests/workflows/test_jobs_run.py)"
TIMINGS: list[str] = []


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GitHub's copy: `main` at the commit under test, and a pull request raising a quota."""
    base = tmp_path_factory.mktemp("github")
    bare = base / "relayops.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=base)
    git("fetch", "-q", str(ROOT), "HEAD:refs/heads/main", cwd=bare)
    work = base / "pr"
    git("clone", "-q", str(bare), str(work), cwd=base)
    customer = work / "customers" / "hooli.yaml"
    text = customer.read_text()
    assert "\nplan: starter\n" in text
    customer.write_text(text.replace("\nplan: starter\n", "\nplan: business\n"))
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.net"]
    git(*identity, "commit", "-q", "-am", "hooli: business plan", cwd=work)
    git("push", "-q", "origin", f"HEAD:refs/heads/{PR_BRANCH}", cwd=work)
    return bare


@pytest.fixture(scope="module")
def machines(
    lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Machine, Machine]]:
    """(runner, container); the container sees the lab's CA and known_hosts, not its key."""
    base = tmp_path_factory.mktemp("hosted")
    with roots(base, {str(LAB_STATE / "ca"): LAB_STATE / "ca"}) as (runner, container):
        ssh = container.inside(str(LAB_STATE / "ssh"))
        ssh.mkdir(parents=True)
        shutil.copyfile(lab.known_hosts, ssh / "known_hosts")
        (ssh / "id_ed25519").symlink_to("/github/home/.ssh/id_ed25519")
        yield runner, container


@pytest.fixture(scope="module")
def workflows(upstream: Path, tmp_path_factory: pytest.TempPathFactory) -> Workflows:
    main_sha = git("rev-parse", "main", cwd=upstream)
    context = {
        "github": {
            "repository": "acme/relayops",
            "server_url": "https://github.example",
            "run_id": "4242",
            "token": "ghs_test-token",
            "base_ref": "main",
            "event": {
                "pull_request": {
                    "number": "12",
                    "head": {"repo": {"full_name": "acme/relayops"}},
                    "base": {"sha": main_sha},
                }
            },
        },
        "secrets": {
            "DEPLOY_SSH_KEY": (LAB_STATE / "ssh" / "id_ed25519").read_text().strip(),
            "RELAYOPS_AGE_IDENTITY": (ROOT / LAB_IDENTITY).read_text().strip(),
        },
    }
    return Workflows(
        upstream=upstream, artifacts=tmp_path_factory.mktemp("artifacts"), context=context
    )


@pytest.fixture(scope="module", autouse=True)
def timings() -> Iterator[None]:
    yield
    print("\n" + "\n".join(TIMINGS))


def run(
    workflows: Workflows, workflow: str, job_id: str, machine: Machine, event: Event, **needs: str
) -> JobRun:
    job = load_jobs(WORKFLOWS / f"{workflow}.yml")[job_id]
    assert (job.container is None) == (machine.user == "runner"), job_id
    for step in job.steps:
        assert production_mentions(retarget(step.run or "")) == [], (job_id, step.name)
    done = workflows.run(job, machine, event, needs)
    TIMINGS.append(f"{workflow}/{job_id}: {done.seconds:.0f} s — " + ", ".join(
        f"{s.name[:40]} {s.seconds:.0f} s" for s in done.steps if s.ran
    ))  # fmt: skip
    return done


def test_pull_request_plan_job_and_its_comment(
    machines: tuple[Machine, Machine], workflows: Workflows, tmp_path: Path
) -> None:
    runner, _ = machines
    pull_request = Event("pull_request", PR_BRANCH)
    plan = run(workflows, "ci", "plan", runner, pull_request)
    assert (plan.skipped, plan.result) == (False, "success"), plan.log()
    artifact = workflows.artifacts / "relayops-plan"
    comment_body = (artifact / "plan.md").read_text()
    full = (artifact / "plan-full.md").read_text()
    for text in (comment_body, full):
        assert text.startswith(f"{MARKER}\n## relayops plan: inventory `lab` against `origin/main`")
        assert "\n### Risks\n" in text
        assert (
            "| **quota raised more than 2×** | `hooli` | 1000 → 10000 recipients/day (×10.0) |"
            in text
        )
    assert comment_body == full  # far under the 60,000-character cut

    comment = run(workflows, "ci", "comment", runner, pull_request, plan="success")
    assert (comment.skipped, comment.result) == (False, "success"), comment.log()
    assert comment.steps[-1].output.endswith("plan-comment: posted a new comment\n")
    filter_ = (
        '.[] | select(.user.login == "github-actions[bot]" and '
        '(.body | startswith("<!-- relayops-plan -->"))) | .id'
    )
    assert gh_calls(runner) == [
        ["api", "--paginate", "repos/acme/relayops/issues/12/comments", "--jq", filter_],
        ["api", "--method", "POST", "repos/acme/relayops/issues/12/comments",
         "-F", "body=@out/plan/plan.md", "--jq", ".html_url"],
    ]  # fmt: skip


def deploy_job(workflows: Workflows, container: Machine) -> JobRun:
    deploy = run(workflows, "deploy", "deploy", container, Event("push", "main"))
    assert (deploy.skipped, deploy.result) == (False, "success"), deploy.log()
    secrets = deploy.step("secrets on disk")
    assert secrets.output == (
        "./scripts/ci-secrets write\n"
        "ci-secrets: wrote /github/home/.ssh/id_ed25519 and "
        "/__w/_temp/relayops-age-identity.txt (mode 600)\n"
    )
    lines = deploy.step("deploy relay1 alone").output.splitlines()
    summary = [line for line in lines if line.startswith("relayops deploy of ")]
    assert [line.split(": ok in ")[0] for line in summary] == [
        f"relayops deploy of inventory/lab.py ({CANARY})",
        f"relayops deploy of inventory/lab.py ({OTHER})",
    ], deploy.log()
    # The secrets are gone at the end of the job.
    assert deploy.step("remove the secrets").returncode == 0
    assert not container.inside("/github/home/.ssh/id_ed25519").exists()
    assert not container.inside("/__w/_temp/relayops-age-identity.txt").exists()
    return deploy


@pytest.fixture(scope="module")
def pushed_to_main(machines: tuple[Machine, Machine], workflows: Workflows, lab: Lab) -> JobRun:
    """deploy.yml's deploy job on a push to main: the lab then runs the commit under test."""
    target = load_target(ROOT, "lab")  # the DNS the operator publishes for the service
    lab.dns.publish(publishable(target.repo, target.inventory, ROOT, reverse_zone(lab.topology)))
    return deploy_job(workflows, machines[1])


def test_push_to_main_deploys_the_canary_first_then_verifies(
    machines: tuple[Machine, Machine], workflows: Workflows, pushed_to_main: JobRun
) -> None:
    _, container = machines
    verify = run(workflows, "deploy", "verify", container, Event("push", "main"), deploy="success")
    assert (verify.skipped, verify.result) == (False, "success"), verify.log()
    report = json.loads(
        (workflows.artifacts / "relayops-check" / "relayops-check.json").read_text()
    )
    assert report["ok"] is True


def test_nightly_names_the_drifted_host_and_opens_an_issue(
    machines: tuple[Machine, Machine], workflows: Workflows, lab: Lab, pushed_to_main: JobRun
) -> None:
    runner, container = machines
    main_cf = LAB_STATE / "relay1" / "root" / "etc" / "postfix" / "main.cf"
    with main_cf.open("a") as handle:
        handle.write(DRIFT + "\n")
    try:
        seen = lab.exec("relay1", ["tail", "-n1", "/etc/postfix/main.cf"])
        assert seen.stdout == DRIFT + "\n"
        nightly = run(workflows, "nightly", "nightly", container, Event("schedule", "main"))
        assert nightly.result == "failure", nightly.log()
        assert nightly.step("DNS, TLS, ports").returncode == 0, nightly.log()
        drift = nightly.step("drift")
        assert drift.returncode == 1, nightly.log()
        # Only relay1, only its main.cf and what follows from it; relay2 is as deployed (its
        # policy daemon wheels, built again in this job's fresh checkout, are identical).
        assert drift.output == (
            f"{CANARY}: drift\n"
            "  - Directories, files and maps | File /etc/postfix/main.cf (content)\n"
            "  - Configuration checks | Check postfix configuration: "
            "postfix -c /etc/postfix check\n"
            "  - Services | Reload postfix\n"
        ), nightly.log()
        assert nightly.step("remove the secrets").returncode == 0
        assert not container.inside("/github/home/.ssh/id_ed25519").exists()

        issue = run(
            workflows, "nightly", "issue", runner, Event("schedule", "main"), nightly="failure"
        )
        assert (issue.skipped, issue.result) == (False, "success"), issue.log()
        run_url = "https://github.example/acme/relayops/actions/runs/4242"
        calls = gh_calls(runner)
        assert calls[:2] == [
            ["issue", "list", "--repo", "acme/relayops", "--label", "nightly-check", "--state",
             "open", "--limit", "1", "--json", "number", "--jq", ".[0].number // empty"],
            ["label", "create", "nightly-check", "--repo", "acme/relayops", "--color", "B60205",
             "--force", "--description", "Opened and closed by the nightly workflow"],
        ]  # fmt: skip
        assert calls[2][:7] == [
            "issue", "create", "--repo", "acme/relayops", "--title", "Nightly check failed",
            "--label",
        ]  # fmt: skip
        assert run_url in calls[2][-1]
        assert len(calls) == 3
    finally:
        # Restore the lab by deploying main again (the deploy workflow's job).
        deploy_job(workflows, container)
        restored = lab.exec(
            "relay1", ["grep", "-c", "drift (tests/workflows", "/etc/postfix/main.cf"]
        )
        assert restored.stdout == "0\n"

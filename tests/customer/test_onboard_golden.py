"""Golden test: onboarding by commands writes the files an operator would have written.

`pytest tests/golden tests/customer -k onboard_golden --update-golden` rewrites
tests/customer/golden/ (the option is declared in tests/golden/conftest.py); read the diff.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from customer.helpers import TODAY, Run
from relayops.compile.dkim import decrypt_key, public_key_der
from relayops.compile.dns_records import dkim_txt, txt_strings
from relayops.compile.host import compile_inventory
from relayops.compile.templates import Templates
from relayops.loader import load_repo

GOLDEN = Path(__file__).parent / "golden" / "onboard"
HASH = re.compile(r"\{SHA512-CRYPT\}\$6\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}")
MASK = "{SHA512-CRYPT}$6$<salt>$<hash>"
PASSWORD_LINE = re.compile(r"^password for newco-app \(shown once, stored nowhere\): (\S+)$", re.M)


def _compare(got: str, name: str, update: bool) -> None:
    path = GOLDEN / name
    if update:
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def _doveadm_verifies(hashed: str, password: str) -> bool:
    done = subprocess.run(
        ["doveadm", "pw", "-t", hashed, "-p", password], capture_output=True, text=True
    )
    return done.returncode == 0 and "(verified)" in done.stdout


def test_new_add_domain_add_login(
    run: Run, example_repo: Path, request: pytest.FixtureRequest
) -> None:
    update = bool(request.config.getoption("--update-golden", default=False))
    new = run(
        "new", "newco", "--name", "NewCo Ltd", "--contact", "ops@newco.example",
        "--plan", "business", "--timezone", "Europe/Berlin", "--pool", "shared-eu",
    )  # fmt: skip
    assert new.exit_code == 0, new.stderr
    assert new.stdout == (
        "wrote customers/newco.yaml\n"
        "next: relayops customer add-domain newco DOMAIN, relayops customer add-login newco LOGIN\n"
    )
    after_new = (example_repo / "customers/newco.yaml").read_text(encoding="utf-8")
    _compare(after_new, "1-new.yaml", update)

    domain = run(
        "add-domain", "newco", "newco.example", "--selector", "n1", "--inventory", "production"
    )
    assert domain.exit_code == 0, domain.stderr
    _compare(
        (example_repo / "customers/newco.yaml").read_text(encoding="utf-8"),
        "2-add-domain.yaml",
        update,
    )
    der = public_key_der(example_repo, "newco.example", "n1")
    assert der is not None
    dkim_line = "n1._domainkey.newco.example. IN TXT " + " ".join(
        f'"{part}"' for part in txt_strings(dkim_txt(der))
    )
    key_dir = example_repo / "secrets" / "dkim"
    assert domain.stdout == (
        "wrote customers/newco.yaml\n"
        f"DKIM key newco.example selector n1 generated: {key_dir}/newco.example.n1.key.age, "
        f"{key_dir}/newco.example.n1.pub.pem\n"
        "DNS records the customer publishes for newco.example (inventory production):\n"
        "; DMARC (suggested start: monitor with p=none, then quarantine)\n"
        '_dmarc.newco.example. IN TXT "v=DMARC1; p=none; rua=mailto:postmaster@newco.example;'
        ' adkim=r; aspf=r"\n'
        "; DKIM public key\n"
        f"{dkim_line}\n"
        "; SPF (merge with an existing record: one per name)\n"
        'newco.example. IN TXT "v=spf1 include:shared-eu._spf.relay.example.net -all"\n'
    )
    # the private key is stored encrypted, and the lab identity opens it: the same pair
    pem = decrypt_key(
        example_repo, "newco.example", "n1", example_repo / "lab" / "age-identity.lab-only.txt"
    )
    private = serialization.load_pem_private_key(pem, password=None)
    assert (
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == der
    )

    login = run("add-login", "newco", "newco-app")
    assert login.exit_code == 0, login.stderr
    text = (example_repo / "customers/newco.yaml").read_text(encoding="utf-8")
    hashes = HASH.findall(text)
    assert len(hashes) == 1
    _compare(text.replace(hashes[0], MASK), "3-add-login.yaml", update)
    found = PASSWORD_LINE.search(login.stdout)
    assert found is not None, login.stdout
    password = found.group(1)
    assert len(password) == 32 and password not in text
    assert login.stdout == (
        "wrote customers/newco.yaml\n"
        "login newco-app: {SHA512-CRYPT} hash stored\n"
        f"password for newco-app (shown once, stored nowhere): {password}\n"
    )
    if shutil.which("doveadm"):
        assert _doveadm_verifies(hashes[0], password)
        assert not _doveadm_verifies(hashes[0], password + "x")

    # the result is a repository the engine validates and compiles
    result = load_repo(example_repo)
    assert result.findings == [] and result.repo is not None
    configs = compile_inventory(result.repo, result.repo.inventories["lab"], templates=Templates())
    assert any(
        b"newco-app" in f.content
        for c in configs.values()
        for f in c.files
        if "relayops-users" in f.path
    )
    assert TODAY  # the onboarding needs no date: a pool customer has no warm-up


def test_new_customer_on_a_dedicated_ip(
    run: Run, example_repo: Path, request: pytest.FixtureRequest
) -> None:
    from customer.helpers import add_free_dedicated_ip

    update = bool(request.config.getoption("--update-golden", default=False))
    add_free_dedicated_ip(example_repo)
    new = run(
        "new", "bigco", "--name", "BigCo: mail & more", "--contact", "noc@bigco.example",
        "--plan", "pro", "--timezone", "Asia/Tokyo", "--dedicated-ip", "dedicated-4",
        "--warmup", "gentle-6w",
    )  # fmt: skip
    assert new.exit_code == 0, new.stderr
    _compare(
        (example_repo / "customers/bigco.yaml").read_text(encoding="utf-8"),
        "dedicated.yaml",
        update,
    )
    assert load_repo(example_repo).findings == []


def test_empty_customer_compiles(run: Run, example_repo: Path) -> None:
    """A customer without domains or logins yet is valid and renders to nothing it could use."""
    new = run(
        "new", "newco", "--name", "NewCo", "--contact", "ops@newco.example",
        "--plan", "starter", "--timezone", "UTC", "--pool", "shared-us",
    )  # fmt: skip
    assert new.exit_code == 0, new.stderr
    result = load_repo(example_repo)
    assert result.repo is not None
    configs = compile_inventory(result.repo, result.repo.inventories["lab"], templates=Templates())
    mentions = sorted(
        (c.host, f.path) for c in configs.values() for f in c.files if b"newco" in f.content
    )
    # only the policy daemon's rules know it (its quota); no login, map or key names it
    assert mentions == [("relay2.relay.example.net", "/etc/relayops/policy.json")]


def test_add_login_json(run: Run, example_repo: Path) -> None:
    result = run("add-login", "acme", "acme-billing", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report) == ["ok", "customer", "login", "password", "scheme"]
    assert report["ok"] is True and report["scheme"] == "SHA512-CRYPT"
    assert (report["customer"], report["login"]) == ("acme", "acme-billing")
    text = (example_repo / "customers/acme.yaml").read_text(encoding="utf-8")
    assert report["password"] not in text and len(HASH.findall(text)) == 4
    if shutil.which("doveadm"):
        assert _doveadm_verifies(HASH.findall(text)[-1], report["password"])

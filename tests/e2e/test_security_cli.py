"""API keys and HTTPS as a user meets them: `liveml init` shows the admin key once and keeps it in a 0600
file, `liveml keys create/list/revoke`, `--no-auth` refused off loopback, and `liveml serve` over HTTPS
with a freshly generated self-signed certificate. `liveml serve` and the first `liveml init` run as real
processes; the other commands run in-process (the same entry point, without a new interpreter each)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

import liveml
from liveml import Settings
from tests.conftest import Cli, checked
from tests.e2e.test_serve_cli import LIVEML, _env, serving

KEY_TEXT = r"lml_[0-9a-f]{16}_[A-Za-z0-9_-]{43}"


def _cli(home: Path, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*LIVEML, *args], env=_env(home), capture_output=True, text=True, timeout=120)
    assert done.returncode in ok, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def test_init_keys_create_list_revoke(tmp_path: Path, cli: Cli) -> None:
    import re

    home = tmp_path / "home"  # the cli fixture's data home too
    first = _cli(home, "init")
    shown = re.findall(KEY_TEXT, first.stdout)
    assert len(shown) == 1 and "shown this once" in first.stdout
    admin = shown[0]
    credentials = home / "credentials"
    assert credentials.read_text().strip() == admin
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    again = checked(cli, "init")  # safe to run again: no second admin key, nothing shown
    assert not re.findall(KEY_TEXT, again.out) and "admin key exists already" in again.out
    assert credentials.read_text().strip() == admin

    created = checked(
        cli, "keys", "create", "--role", "predictor", "--models", "churn,fraud", "--expires", "90d"
    )
    key = created.out.strip()
    assert re.fullmatch(KEY_TEXT, key) and "only time the key is shown" in created.err
    listed = checked(cli, "keys", "list").out + checked(cli, "keys", "list", "--json").out
    assert admin not in listed and key not in listed
    assert admin[len("lml_") + 17 :] not in listed and key[len("lml_") + 17 :] not in listed
    rows = json.loads(checked(cli, "keys", "list", "--json").out)
    assert [(r["role"], r["models"], r["status"]) for r in rows] == [
        ("admin", None, "active"),
        ("predictor", ["churn", "fraud"], "active"),
    ]
    assert rows[1]["expires_at"] is not None and rows[0]["expires_at"] is None
    predictor_id = key.split("_")[1]
    assert rows[1]["id"] == predictor_id
    checked(cli, "keys", "revoke", predictor_id)
    assert json.loads(checked(cli, "keys", "list", "--json").out)[1]["status"] == "revoked"
    assert "already revoked" in checked(cli, "keys", "revoke", predictor_id, ok=(1,)).err
    assert "no API key" in checked(cli, "keys", "revoke", "0123456789abcdef", ok=(1,)).err
    assert "unknown role" in checked(cli, "keys", "create", "--role", "root", ok=(2,)).err
    assert (
        "predictor keys only"
        in checked(cli, "keys", "create", "--role", "viewer", "--models", "a", ok=(2,)).err
    )
    assert (
        "not a duration"
        in checked(cli, "keys", "create", "--role", "viewer", "--expires", "soon", ok=(2,)).err
    )


def test_no_auth_only_on_loopback(tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    checked(cli, "init")
    refused = _cli(home, "serve", "--host", "0.0.0.0", "--no-auth", ok=(2,))
    assert "only on a loopback address" in refused.stderr and "LIVEML_PLATFORM_AUTH" in refused.stderr

    def started(*args: object, **kwargs: object) -> None:  # a tripwire: refused means never started
        raise AssertionError("liveml serve started a server instead of refusing")

    monkeypatch.setattr("liveml.cli.serve._run", started)
    with monkeypatch.context() as env:
        env.setenv("LIVEML_AUTH", "false")
        also = checked(cli, "serve", "--host", "0.0.0.0", ok=(2,))
    assert "only on a loopback address" in also.err
    half = checked(cli, "serve", "--ssl-certfile", str(tmp_path / "cert.pem"), ok=(2,))
    assert "both --ssl-certfile and --ssl-keyfile" in half.err


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.slow
def test_serve_over_https_with_keys(tmp_path: Path, model_files: dict[str, Path], cli: Cli) -> None:
    home = tmp_path / "home"
    checked(cli, "init")
    checked(cli, "push", "iris", str(model_files["logistic"]), "--alias", "production", "--no-compile")
    cert, key = _self_signed(tmp_path)
    args = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    trust = ssl.create_default_context(cafile=str(cert))
    with serving(args, home, tmp_path, auth=True, verify=trust) as (url, _proc):
        assert url.startswith("https://")
        admin = {"Authorization": f"Bearer {(home / 'credentials').read_text().strip()}"}
        with httpx.Client(base_url=url, verify=trust) as http:
            assert http.get("/health/ready").status_code == 200
            assert http.get("/v1/models").status_code == 401
            assert http.get("/v1/models", headers=admin).status_code == 200
        with pytest.raises(httpx.ConnectError):  # not trusted without the certificate
            httpx.get(f"{url}/health/ready")
        with pytest.raises(httpx.HTTPError):  # and no plain HTTP on the port
            httpx.get(url.replace("https://", "http://") + "/health/ready").raise_for_status()
        with liveml.Client(url, settings=Settings(home=home), verify=str(cert)) as client:
            row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
            assert client.predict("iris", [row]).version == 1
        wrong = "lml_" + "0" * 16 + "_" + "A" * 43
        with (
            liveml.Client(url, api_key=wrong, verify=str(cert)) as client,
            pytest.raises(liveml.Unauthorized),
        ):
            client.models()

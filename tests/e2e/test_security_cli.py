"""API keys and HTTPS as a user meets them: `liveml init` shows the admin key once and keeps it in a 0600
file, `liveml keys create/list/revoke`, `--no-auth` refused off loopback, and `liveml serve` over HTTPS
with a freshly generated self-signed certificate."""

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
from tests.e2e.test_serve_cli import LIVEML, _env, serving

KEY_TEXT = r"lml_[0-9a-f]{16}_[A-Za-z0-9_-]{43}"


def _cli(home: Path, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*LIVEML, *args], env=_env(home), capture_output=True, text=True, timeout=120)
    assert done.returncode in ok, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def test_init_keys_create_list_revoke(tmp_path: Path) -> None:
    import re

    home = tmp_path / "home"
    first = _cli(home, "init")
    shown = re.findall(KEY_TEXT, first.stdout)
    assert len(shown) == 1 and "shown this once" in first.stdout
    admin = shown[0]
    credentials = home / "credentials"
    assert credentials.read_text().strip() == admin
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    again = _cli(home, "init")  # safe to run again: no second admin key, nothing shown
    assert not re.findall(KEY_TEXT, again.stdout) and "admin key exists already" in again.stdout
    assert credentials.read_text().strip() == admin

    created = _cli(
        home, "keys", "create", "--role", "predictor", "--models", "churn,fraud", "--expires", "90d"
    )
    key = created.stdout.strip()
    assert re.fullmatch(KEY_TEXT, key) and "only time the key is shown" in created.stderr
    listed = _cli(home, "keys", "list").stdout + _cli(home, "keys", "list", "--json").stdout
    assert admin not in listed and key not in listed
    assert admin[len("lml_") + 17 :] not in listed and key[len("lml_") + 17 :] not in listed
    rows = json.loads(_cli(home, "keys", "list", "--json").stdout)
    assert [(r["role"], r["models"], r["status"]) for r in rows] == [
        ("admin", None, "active"),
        ("predictor", ["churn", "fraud"], "active"),
    ]
    assert rows[1]["expires_at"] is not None and rows[0]["expires_at"] is None
    predictor_id = key.split("_")[1]
    assert rows[1]["id"] == predictor_id
    _cli(home, "keys", "revoke", predictor_id)
    assert json.loads(_cli(home, "keys", "list", "--json").stdout)[1]["status"] == "revoked"
    assert "already revoked" in _cli(home, "keys", "revoke", predictor_id, ok=(1,)).stderr
    assert "no API key" in _cli(home, "keys", "revoke", "0123456789abcdef", ok=(1,)).stderr
    assert "unknown role" in _cli(home, "keys", "create", "--role", "root", ok=(2,)).stderr
    assert (
        "predictor keys only"
        in _cli(home, "keys", "create", "--role", "viewer", "--models", "a", ok=(2,)).stderr
    )
    assert (
        "not a duration"
        in _cli(home, "keys", "create", "--role", "viewer", "--expires", "soon", ok=(2,)).stderr
    )


def test_no_auth_only_on_loopback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _cli(home, "init")
    refused = _cli(home, "serve", "--host", "0.0.0.0", "--no-auth", ok=(2,))
    assert "only on a loopback address" in refused.stderr and "LIVEML_PLATFORM_AUTH" in refused.stderr
    also = subprocess.run(
        [*LIVEML, "serve", "--host", "0.0.0.0"],
        env={**_env(home), "LIVEML_AUTH": "false"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert also.returncode == 2 and "only on a loopback address" in also.stderr
    half = _cli(home, "serve", "--ssl-certfile", str(tmp_path / "cert.pem"), ok=(2,))
    assert "both --ssl-certfile and --ssl-keyfile" in half.stderr


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
def test_serve_over_https_with_keys(tmp_path: Path, model_files: dict[str, Path]) -> None:
    home = tmp_path / "home"
    _cli(home, "init")
    _cli(home, "push", "iris", str(model_files["logistic"]), "--alias", "production", "--no-compile")
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

"""Token trouble reaches the operator as one line naming the module, token or key label."""

from __future__ import annotations

import json
from pathlib import Path

import pkcs11
import pytest
from click.testing import CliRunner, Result
from hsm_fixtures import USER_PIN, make_softhsm
from pkcs11 import Attribute, KeyType

from provisioner.hsm.pin import PIN_ENV
from provisioner.site.admin_cli import site_group


def _error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def _init(site: Path, module: Path | str, label: str) -> Result:
    return CliRunner().invoke(site_group, ["--site-dir", str(site), "init", "--pkcs11-module",
                                           str(module), "--token-label", label])


@pytest.fixture
def hsm_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    hsm = make_softhsm(tmp_path / "hsm", monkeypatch)
    hsm.init_token("site-token")
    return hsm.module


def test_wrong_pin_is_one_line(hsm_module: Path, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PIN_ENV, "99999999")
    line = _error_line(_init(tmp_path / "site", hsm_module, "site-token"))
    assert line == ("Error: token 'site-token' refused the PIN "
                    "(repeated failures may lock the token)")


def test_missing_module_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PIN_ENV, USER_PIN)
    missing = tmp_path / "no-such-pkcs11.so"
    line = _error_line(_init(tmp_path / "site", missing, "site-token"))
    assert line.startswith(f"Error: PKCS#11 module {missing}: ")
    assert "No such file" in line


def test_missing_token_is_one_line(hsm_module: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PIN_ENV, USER_PIN)
    line = _error_line(_init(tmp_path / "site", hsm_module, "other-token"))
    assert line == f"Error: no token labelled 'other-token' in PKCS#11 module {hsm_module}"


def test_missing_key_label_is_one_line(hsm_module: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PIN_ENV, USER_PIN)
    site = tmp_path / "site"
    assert _init(site, hsm_module, "site-token").exit_code == 0
    settings = json.loads((site / "keys.json").read_text())
    settings["pkcs11"]["signing_label"] = "renamed-signing"
    (site / "keys.json").write_text(json.dumps(settings))
    line = _error_line(CliRunner().invoke(site_group, ["--site-dir", str(site), "audit",
                                                       "verify"]))
    assert line == ("Error: token 'site-token' has no Ed25519 key pair labelled "
                    "'renamed-signing'")


def test_no_pin_source_is_one_line(hsm_module: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIN_ENV, raising=False)
    line = _error_line(_init(tmp_path / "site", hsm_module, "site-token"))
    assert "give --pin-file, set PROVISIONER_PKCS11_PIN" in line


def test_pin_file_must_be_private(hsm_module: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIN_ENV, raising=False)
    pin_file = tmp_path / "pin"
    pin_file.write_text(USER_PIN + "\n")
    pin_file.chmod(0o644)
    args = ["--site-dir", str(tmp_path / "site"), "init", "--pkcs11-module", str(hsm_module),
            "--token-label", "site-token", "--pin-file", str(pin_file)]
    line = _error_line(CliRunner().invoke(site_group, args))
    assert "mode 0644, must be 0600" in line
    pin_file.chmod(0o600)
    result = CliRunner().invoke(site_group, args)
    assert result.exit_code == 0, result.output
    # The PIN file is remembered (by path, never the PIN) for serve and admin commands.
    settings = (tmp_path / "site" / "keys.json").read_text()
    assert USER_PIN not in settings
    assert str(pin_file) in settings
    listing = CliRunner().invoke(site_group, ["--site-dir", str(tmp_path / "site"),
                                              "audit", "verify"])
    assert listing.exit_code == 0, listing.output
    assert "audit chain OK" in listing.output
    shown = CliRunner().invoke(site_group, ["--site-dir", str(tmp_path / "site"), "keys",
                                            "show"])
    assert shown.exit_code == 0, shown.output
    assert "token 'site-token'" in shown.output
    assert "signing key provisioner-signing" in shown.output


def test_an_extractable_key_under_a_site_label_is_not_adopted(
    hsm_module: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PIN_ENV, USER_PIN)
    lib = pkcs11.lib(str(hsm_module))
    try:
        with lib.get_token(token_label="site-token").open(user_pin=USER_PIN, rw=True) as s:
            s.generate_key(KeyType.AES, 256, label="provisioner-master", store=True,
                           template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False})
    finally:
        pkcs11.unload(str(hsm_module))
    line = _error_line(_init(tmp_path / "site", hsm_module, "site-token"))
    assert line == ("Error: token 'site-token' key 'provisioner-master': is extractable or "
                    "not sensitive; refusing to use it")

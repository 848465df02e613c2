"""A file or directory a command names that cannot be written is a usage error (status 2)
in both languages, not a traceback, and a command that fails half-way leaves nothing
half-done: no rules key without its public half, no broker configuration naming an ACL
that was never written.  A directory that does not exist yet is made."""

from __future__ import annotations

from pathlib import Path

from tests.provisioning.world import run


def _tool(tmp: Path, *args: str) -> tuple[int, str]:
    r = run("firmware_tools", *args, cwd=tmp)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stderr


def _blocked(tmp: Path) -> Path:
    """A regular file: no directory can be made where it is."""
    f = tmp / "a-file"
    f.write_text("not a directory\n")
    return f


def _refused_in_both_languages(err: str, path: Path) -> None:
    assert f"error: cannot use {path}" in err, err
    assert f"خطا: دسترسی به پرونده ممکن نیست: {path}" in err, err


def test_rules_keygen_that_cannot_write_the_public_key_keeps_no_private_key(
    tmp_path: Path,
) -> None:
    blocked = _blocked(tmp_path)
    code, err = _tool(tmp_path, "rules", "keygen", "--key", "k.key", "--pub", f"{blocked}/pub.pem")
    assert code == 2
    _refused_in_both_languages(err, blocked)
    assert not (tmp_path / "k.key").exists()
    code, err = _tool(tmp_path, "rules", "keygen", "--key", "k.key", "--pub", "new/dir/pub.pem")
    assert code == 0, err
    assert (tmp_path / "k.key").exists() and (tmp_path / "new" / "dir" / "pub.pem").exists()


def _broker_config(tmp: Path, acl: str) -> tuple[int, str]:
    return _tool(
        tmp, "broker-config", "--tenant", "hypershahr", "--out", str(tmp / "conf"),
        "--cafile", "ca.pem", "--certfile", "broker.pem", "--keyfile", "broker.key",
        "--acl-file", acl,
    )  # fmt: skip


def test_broker_config_never_names_an_acl_it_could_not_write(tmp_path: Path) -> None:
    blocked = _blocked(tmp_path)
    code, err = _broker_config(tmp_path, f"{blocked}/x.acl")
    assert code == 2
    _refused_in_both_languages(err, blocked)
    assert not (tmp_path / "conf" / "loyalty.conf").exists()
    code, err = _broker_config(tmp_path, "nodir/x.acl")
    assert code == 0, err
    acl = tmp_path / "nodir" / "x.acl"
    assert f"acl_file {acl}" in (tmp_path / "conf" / "loyalty.conf").read_text()
    assert "pattern write loyalty/v1/hypershahr/records/+/%u" in acl.read_text()


def test_pki_ca_in_a_directory_that_cannot_be_made_is_a_usage_error(tmp_path: Path) -> None:
    blocked = _blocked(tmp_path)
    code, err = _tool(tmp_path, "pki", "ca", "--dir", f"{blocked}/pki")
    assert code == 2
    _refused_in_both_languages(err, blocked)

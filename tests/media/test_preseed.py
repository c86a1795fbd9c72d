"""Unattended configs: render for every family, validate with the installers' own rules, refuse bad ones by field."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.media import preseed, validate
from factory.media.catalog import InstallerFamily
from factory.media.preseed import DiskLayout, PreseedVars, render

PASSWORD = "Tr0ub4dor&3-horse"


@pytest.fixture(autouse=True)
def _no_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default the schema is absent (structure checks only), as for a user who has not pointed at it."""
    monkeypatch.delenv(validate.SCHEMA_ENV, raising=False)


@pytest.fixture
def subiquity_schema(shared_schemas: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Subiquity's schema from the reference folder, the way a user points FACTORY_SUBIQUITY_SCHEMA at it."""
    path = shared_schemas / "subiquity-autoinstall-24.04.json"
    monkeypatch.setenv(validate.SCHEMA_ENV, str(path))
    return path


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    key = tmp_path_factory.mktemp("key") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test@factory", "-f", str(key)], check=True)
    return Path(f"{key}.pub").read_text().strip()


@pytest.fixture
def good(ssh_key: str) -> PreseedVars:
    return PreseedVars.from_pairs([
        "hostname=web1", f"password={PASSWORD}", "timezone=Europe/Berlin", "locale=de_DE.UTF-8", "keyboard=de",
        "packages=vim,curl", "packages=htop", f"ssh_authorized_keys={ssh_key}", "late_commands=echo done",
        "disk_layout=lvm", "mirror=http://10.0.2.2:8080/debian", "proxy=http://10.0.2.2:3128",
    ])


def text(family: InstallerFamily, v: PreseedVars) -> str:
    return "\n".join(c.decode() for c in render(family, v).files.values())


@pytest.mark.parametrize("family", list(InstallerFamily))
def test_render_validates_and_lands_where_the_installer_looks(family: InstallerFamily, good: PreseedVars) -> None:
    cfg = render(family, good)
    assert tuple(cfg.files) == family.media_files
    preseed.check(cfg)  # re-validating the output must pass
    assert render(family, good).digest() == cfg.digest()  # deterministic: same vars, same media


@pytest.mark.parametrize("family", list(InstallerFamily))
def test_password_only_as_sha512_crypt(family: InstallerFamily, good: PreseedVars) -> None:
    out = text(family, good)
    assert PASSWORD not in out
    assert good.password_hash.startswith("$6$") and good.password_hash in out
    # The hash really is of the password: openssl recomputes it from the same salt.
    salt = good.password_hash.split("$")[2]
    assert preseed.hash_password(PASSWORD, salt=salt) == good.password_hash


@pytest.mark.parametrize("family", list(InstallerFamily))
def test_every_variable_reaches_the_config(family: InstallerFamily, good: PreseedVars, ssh_key: str) -> None:
    out = text(family, good)
    for value in ("web1", "Europe/Berlin", "vim", "curl", "htop", "echo done", ssh_key.split()[1]):
        assert value in out, value
    assert "10.0.2.2:8080" in out and "10.0.2.2:3128" in out


def test_poweroff_ending_per_family(good: PreseedVars) -> None:
    assert "shutdown: poweroff" in text(InstallerFamily.SUBIQUITY, good)
    assert "d-i debian-installer/exit/poweroff boolean true" in text(InstallerFamily.DEBIAN, good)
    assert "\npoweroff\n" in text(InstallerFamily.ANACONDA, good)
    reboot = PreseedVars.from_pairs(["poweroff=false"], base=good)
    assert "shutdown: reboot" in text(InstallerFamily.SUBIQUITY, reboot)
    assert "\nreboot\n" in text(InstallerFamily.ANACONDA, reboot)


def test_keys_from_file_and_password_auth(good: PreseedVars, ssh_key: str, tmp_path: Path) -> None:
    keys = tmp_path / "authorized_keys"
    keys.write_text(f"# team keys\n{ssh_key}\n\n")
    v = PreseedVars.from_pairs([f"ssh_authorized_keys=@{keys}"], base=PreseedVars.from_pairs(
        [f"password={PASSWORD}"]))
    assert v.ssh_authorized_keys == (ssh_key,)
    assert "allow-pw: true" in text(InstallerFamily.SUBIQUITY, v)
    locked = PreseedVars.from_pairs(["ssh_password_auth=false"], base=v)
    assert "allow-pw: false" in text(InstallerFamily.SUBIQUITY, locked)
    with pytest.raises(FactoryError, match="cannot read"):
        PreseedVars.from_pairs([f"ssh_authorized_keys=@{tmp_path / 'none'}"], base=v)


def test_disk_layouts(good: PreseedVars) -> None:
    direct = PreseedVars.from_pairs(["disk_layout=direct"], base=good)
    assert direct.disk_layout is DiskLayout.DIRECT
    assert 'name: "direct"' in text(InstallerFamily.SUBIQUITY, direct)
    assert "partman-auto/method string regular" in text(InstallerFamily.DEBIAN, direct)
    assert "autopart --type=plain" in text(InstallerFamily.ANACONDA, direct)
    assert "partman-auto/method string lvm" in text(InstallerFamily.DEBIAN, good)
    assert "autopart --type=lvm" in text(InstallerFamily.ANACONDA, good)


# --- bad variables -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("pair", "field"), [
    ("hostname=web_1!", "hostname"),
    ("username=Root User", "username"),
    ("timezone=Mars/Olympus", "timezone"),
    ("locale=english", "locale"),
    ("disk_layout=zfs", "disk_layout"),
    ("ssh_authorized_keys=not-a-key", "ssh_authorized_keys"),
    ("packages=vim;rm -rf /", "packages"),
    ("mirror=deb.debian.org/debian", "mirror"),
    ("poweroff=maybe", "--var poweroff"),
    ("password_hash=$1$md5$abc", "password_hash"),
])
def test_bad_variable_is_refused_by_name(good: PreseedVars, pair: str, field: str) -> None:
    with pytest.raises(FactoryError) as exc:
        PreseedVars.from_pairs([pair], base=good)
    assert exc.value.render().startswith(f"{field}:") or f"{field}:" in exc.value.render()


def test_unknown_variable_suggests_the_name() -> None:
    with pytest.raises(FactoryError) as exc:
        PreseedVars.from_pairs(["hostnme=x"])
    assert "hostnme: unknown variable" in exc.value.message and "hostname" in (exc.value.hint or "")


def test_password_is_required() -> None:
    with pytest.raises(FactoryError, match="password: required"):
        PreseedVars.from_pairs(["hostname=a"])


# --- bad ready-made configs: each family's own validator, the field named -----------------------------------------

USER_DATA = """\
#cloud-config
autoinstall:
  version: 1
  identity:
    hostname: h
    username: u
    password: "$6$x$y"
"""


def test_good_ready_user_data_is_taken_as_is(tmp_path: Path, good: PreseedVars) -> None:
    path = tmp_path / "user-data"
    path.write_text(USER_DATA)
    cfg = render(InstallerFamily.SUBIQUITY, good, ready_file=path)
    assert cfg.files["nocloud/user-data"] == USER_DATA.encode()
    assert b"local-hostname" in cfg.files["nocloud/meta-data"]


KICKSTART = "text\ncdrom\nlang en_US.UTF-8\nrootpw --lock\nautopart\npoweroff\n%packages\n@core\n%end\n"


def test_good_ready_kickstart_passes(tmp_path: Path, good: PreseedVars) -> None:
    path = tmp_path / "ks.cfg"
    path.write_text(KICKSTART)
    assert render(InstallerFamily.ANACONDA, good, ready_file=path).files["ks.cfg"] == KICKSTART.encode()


PRESEED = "d-i debian-installer/locale string en_US.UTF-8\nd-i passwd/root-login boolean false\n"
AUTO, DEB, KS = InstallerFamily.SUBIQUITY, InstallerFamily.DEBIAN, InstallerFamily.ANACONDA
# Problems only subiquity's schema finds (reference tests: they need FACTORY_SHARED_DIR's schemas).
SCHEMA_BAD_CONFIGS = [
    (AUTO, USER_DATA.replace("    username: u\n", ""), "autoinstall.identity.username: required"),
    (AUTO, USER_DATA + "  shutdown: explode\n", "autoinstall.shutdown: 'explode' is not one of"),
    (AUTO, USER_DATA + "  storgae:\n    layout: {name: lvm}\n",
     "autoinstall.storgae: unknown key (did you mean 'storage'?)"),
]
BAD_CONFIGS = [
    (AUTO, USER_DATA.replace("version: 1", "version: 2"), "autoinstall.version"),
    (AUTO, USER_DATA.replace("#cloud-config\n", ""), "the first line must be '#cloud-config'"),
    (AUTO, USER_DATA + "  late-commands: [\n", "user-data: invalid YAML"),
    (AUTO, USER_DATA + "packages: vim\n", "packages: must be a list, not string"),
    (AUTO, "#cloud-config\nhostname: x\n", "autoinstall: required"),
    (KS, KICKSTART + "frobnicate --now\n", "Unknown command: frobnicate"),
    (KS, KICKSTART.replace("autopart", "autopart --type=zfs"), "autopart: Invalid autopart type"),
    (KS, KICKSTART.replace("rootpw --lock", "rootpw a b"), "rootpw:"),
    (KS, KICKSTART.replace("%end\n", ""), "%end"),
    (KS, KICKSTART.replace("text", "install"), "install"),
    (DEB, PRESEED + "d-i netcfg/get_hostname\n", "preseed.cfg:3: "),
    (DEB, PRESEED + "d-i time/zone strng UTC\n", "time/zone: unknown type 'strng'"),
    (DEB, PRESEED + "d-i clock-setup/utc boolean maybe\n", "clock-setup/utc: a boolean must be true or false"),
]


def _refused(tmp_path: Path, good: PreseedVars, family: InstallerFamily, content: str, expected: str) -> None:
    path = tmp_path / family.media_files[0].rsplit("/", 1)[-1]
    path.write_text(content)
    with pytest.raises(FactoryError) as exc:
        render(family, good, ready_file=path)
    assert expected in exc.value.render()
    assert str(path) in exc.value.render()


@pytest.mark.parametrize(("family", "content", "expected"), BAD_CONFIGS)
def test_bad_ready_config_is_refused_naming_the_field(tmp_path: Path, good: PreseedVars, family: InstallerFamily,
                                                      content: str, expected: str) -> None:
    _refused(tmp_path, good, family, content, expected)


@pytest.mark.parametrize(("family", "content", "expected"), SCHEMA_BAD_CONFIGS)
def test_schema_finds_bad_autoinstall_fields(tmp_path: Path, good: PreseedVars, family: InstallerFamily,
                                             content: str, expected: str, subiquity_schema: Path) -> None:
    _refused(tmp_path, good, family, content, expected)


def test_without_the_schema_structure_is_checked_and_said_once(
        tmp_path: Path, good: PreseedVars, capsys: pytest.CaptureFixture[str]) -> None:
    validate.reset_schema_notice()
    for _ in range(2):
        render(InstallerFamily.SUBIQUITY, good)
    err = capsys.readouterr().err
    assert err.count("autoinstall schema was not found") == 1
    assert "FACTORY_SUBIQUITY_SCHEMA" in err


def test_debconf_checker_itself_rejects_a_missing_value() -> None:
    with pytest.raises(FactoryError) as exc:
        validate.check_preseed("d-i foo\n")
    assert "parse error on line 1" in exc.value.render()


# --- user templates ------------------------------------------------------------------------------------------------

def test_user_template_renders_and_is_validated(tmp_path: Path, good: PreseedVars) -> None:
    tmpl = tmp_path / "my-ks.j2"
    tmpl.write_text(KICKSTART.replace("text\n", "text\nnetwork --hostname={{ v.hostname }}\n"))
    assert b"network --hostname=web1" in render(InstallerFamily.ANACONDA, good, template=tmpl).files["ks.cfg"]
    tmpl.write_text(KICKSTART + "frobnicate\n")
    with pytest.raises(FactoryError, match="frobnicate"):
        render(InstallerFamily.ANACONDA, good, template=tmpl)


def test_user_template_undefined_variable_is_named(tmp_path: Path, good: PreseedVars) -> None:
    tmpl = tmp_path / "t.j2"
    tmpl.write_text("text\nnetwork --hostname={{ v.hostnam }}\n")
    with pytest.raises(FactoryError) as exc:
        render(InstallerFamily.ANACONDA, good, template=tmpl)
    assert "hostnam" in exc.value.message and "hostname" in (exc.value.hint or "")


def test_user_template_syntax_error_has_a_line(tmp_path: Path, good: PreseedVars) -> None:
    tmpl = tmp_path / "t.j2"
    tmpl.write_text("text\n{% if %}\n")
    with pytest.raises(FactoryError) as exc:
        render(InstallerFamily.ANACONDA, good, template=tmpl)
    assert exc.value.where is not None and exc.value.where.line == 2


def test_user_template_not_utf8_is_located(tmp_path: Path, good: PreseedVars) -> None:
    tmpl = tmp_path / "t.j2"
    tmpl.write_bytes(b"text\n# caf\xe9\n")   # a Latin-1 file (was an internal UnicodeDecodeError in iso-build)
    with pytest.raises(FactoryError) as exc:
        render(InstallerFamily.ANACONDA, good, template=tmpl)
    assert "not valid UTF-8" in exc.value.message and "iconv" in (exc.value.hint or "")
    assert exc.value.where is not None and (exc.value.where.file, exc.value.where.line) == (str(tmpl), 2)


def test_schema_location_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, good: PreseedVars) -> None:
    monkeypatch.setenv(validate.SCHEMA_ENV, str(tmp_path / "nope.json"))
    with pytest.raises(FactoryError, match="FACTORY_SUBIQUITY_SCHEMA"):
        render(InstallerFamily.SUBIQUITY, good)


GOLDEN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICAXlOd3HTjmR9srwIqScghfk5TDaqHxASAIHXHh6VsA golden@factory"


@pytest.mark.parametrize("family", list(InstallerFamily))
def test_rendered_configs_match_golden_files(family: InstallerFamily, golden) -> None:  # type: ignore[no-untyped-def]
    """Template changes show up as reviewable diffs (`pytest --regen` rewrites tests/golden/preseeds/)."""
    v = PreseedVars.from_pairs([
        "hostname=golden", "password=golden-password", "timezone=Europe/Paris", "packages=vim,curl",
        f"ssh_authorized_keys={GOLDEN_KEY}", "late_commands=echo done > /dev/ttyS0", "disk_layout=lvm",
        "mirror=http://mirror.example.invalid/repo", "proxy=http://proxy.example.invalid:3128",
    ])
    for path, content in render(family, v).files.items():
        golden(f"preseeds/{family.value}/{path.replace('/', '_')}", content.decode())

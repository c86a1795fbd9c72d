"""Unattended installer configs: one set of variables rendered into autoinstall, preseed or kickstart.

Templates live in preseeds/<family>/ (Jinja, StrictUndefined); a user may pass their own template or a ready
file instead. Whatever the source, the result is validated before it is returned, so no ISO is ever written
with a config the installer would reject or stop on.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import pwd
import re
import shlex
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from secrets import token_urlsafe
from typing import Any
from urllib.parse import urlsplit

import jinja2

from factory import paths, run, secrets
from factory.errors import FactoryError, FactoryErrors, Location
from factory.media import validate
from factory.media.catalog import InstallerFamily
from factory.options import suggest
from factory.schema.values import PRESEED_VARS

HOSTNAME_RE = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$", re.IGNORECASE)
USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
LOCALE_RE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?(\.[A-Za-z0-9-]+)?(@\w+)?$")
SHA512_CRYPT_RE = re.compile(r"^!?\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$")
PACKAGE_RE = re.compile(r"^[@^A-Za-z0-9][A-Za-z0-9.+_:~-]*$")

# The file each family's main template renders to, and the templates that make up the family.
TEMPLATES: dict[InstallerFamily, dict[str, str]] = {
    InstallerFamily.SUBIQUITY: {"nocloud/user-data": "user-data.j2", "nocloud/meta-data": "meta-data.j2"},
    InstallerFamily.DEBIAN: {"preseed.cfg": "preseed.cfg.j2"},
    InstallerFamily.ANACONDA: {"ks.cfg": "ks.cfg.j2"},
}


class DiskLayout(StrEnum):
    DIRECT = "direct"
    LVM = "lvm"


@dataclass(frozen=True)
class PreseedVars:
    """Everything an unattended install needs to know; the password is held only as a SHA-512 crypt hash."""

    hostname: str = "factory"
    locale: str = "en_US.UTF-8"
    keyboard: str = "us"
    timezone: str = "UTC"
    username: str = "factory"
    password_hash: str = ""
    ssh_authorized_keys: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    disk_layout: DiskLayout = DiskLayout.DIRECT
    late_commands: tuple[str, ...] = ()
    proxy: str = ""
    mirror: str = ""
    poweroff: bool = True
    sudo_nopasswd: bool = True
    ssh_password_auth: bool = True  # builders often log in with the password (Packer's ssh_password)

    @classmethod
    def from_pairs(cls, pairs: Sequence[str], *, base: PreseedVars | None = None,
                   login_needed: bool = True) -> PreseedVars:
        """Build from `KEY=VALUE` strings (the CLI's --var). `password=` is hashed at once and never kept.

        List keys (packages, ssh_authorized_keys, late_commands) may repeat; packages also split on commas;
        `ssh_authorized_keys=@FILE` reads the keys from an authorized_keys / .pub file. login_needed: see check().
        """
        values: dict[str, Any] = dataclasses.asdict(base or cls())
        lists: dict[str, list[str]] = {}
        known = [f.name for f in dataclasses.fields(cls)] + ["password"]
        errors: list[FactoryError] = []
        for pair in pairs:
            key, sep, value = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not sep:
                errors.append(FactoryError(f"--var {pair!r}: expected KEY=VALUE"))
            elif key not in known:
                close = suggest(key, known)
                errors.append(FactoryError(f"--var {key}: unknown variable",
                                           hint=f"did you mean {close!r}?" if close else "known: " + ", ".join(known)))
            elif key == "password":
                values["password_hash"] = hash_password(value)
            elif key in _LIST_FIELDS:
                items = _list_items(key, value)
                lists.setdefault(key, []).extend(v for v in items if v)
            elif key in _BOOL_FIELDS:
                if value.lower() not in _BOOLS:
                    errors.append(FactoryError(f"--var {key}: {value!r} is not a boolean (true/false)"))
                else:
                    values[key] = _BOOLS[value.lower()]
            else:
                values[key] = value
        if errors:
            raise errors[0] if len(errors) == 1 else FactoryErrors(errors)
        for key, items in lists.items():
            values[key] = tuple(items)
        return cls.create(values, login_needed=login_needed)

    @classmethod
    def create(cls, values: Mapping[str, Any], *, login_needed: bool = True) -> PreseedVars:
        """Build from a mapping, checking every field; all problems are reported together."""
        values = dict(values)
        layout = str(values.get("disk_layout", DiskLayout.DIRECT))
        if layout not in DiskLayout.__members__.values():
            raise FactoryError(f"disk_layout: {layout!r} is not one of direct, lvm")
        values["disk_layout"] = DiskLayout(layout)
        for name in _LIST_FIELDS:
            values[name] = tuple(values.get(name, ()))
        made = cls(**values)
        made.check(login_needed=login_needed)
        if made.password_hash:
            secrets.register(made.password_hash)
        return made

    def check(self, *, login_needed: bool = True) -> None:
        """Field checks the installers would otherwise fail on late (or hang on, waiting at a prompt).

        login_needed=False when these variables will not write the install's login: a ready config file carries
        its own, a build adds its own password. No password is then demanded; one that is given is still checked.
        """
        problems = list(self._problems(login_needed))
        if problems:
            errs = [FactoryError(f"{name}: {msg}") for name, msg in problems]
            raise errs[0] if len(errs) == 1 else FactoryErrors(errs)

    def _problems(self, login_needed: bool) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if not HOSTNAME_RE.match(self.hostname):
            out.append(("hostname", f"{self.hostname!r} is not a valid host name (letters, digits, '-')"))
        if not USERNAME_RE.match(self.username) or self.username == "root":
            out.append(("username", f"{self.username!r} is not a valid user name (lower case, not root)"))
        if not LOCALE_RE.match(self.locale):
            out.append(("locale", f"{self.locale!r} is not a locale like en_US.UTF-8"))
        if not re.match(r"^[a-z]{2,3}([_-][a-z0-9]+)?$", self.keyboard, re.IGNORECASE):
            out.append(("keyboard", f"{self.keyboard!r} is not a keyboard layout like us or de"))
        if self.timezone not in zoneinfo.available_timezones() and self.timezone != "UTC":
            out.append(("timezone", f"{self.timezone!r} is not an IANA time zone like Europe/Berlin"))
        if not self.password_hash:
            if login_needed:
                out.append(("password", "required (--var password=... is hashed with SHA-512 crypt)"))
        elif not SHA512_CRYPT_RE.match(self.password_hash):
            out.append(("password_hash", "must be a SHA-512 crypt hash ($6$salt$...)"))
        out += [("ssh_authorized_keys", f"{_short(k)!r} is not an OpenSSH public key")
                for k in self.ssh_authorized_keys if not _is_ssh_key(k)]
        out += [("packages", f"{p!r} is not a package name") for p in self.packages if not PACKAGE_RE.match(p)]
        out += [("late_commands", "a command must be one line") for c in self.late_commands if "\n" in c]
        for name in ("proxy", "mirror"):
            url = getattr(self, name)
            if url and (urlsplit(url).scheme not in ("http", "https", "ftp") or not urlsplit(url).netloc):
                out.append((name, f"{url!r} is not an http(s) URL"))
        return out

    def public(self) -> dict[str, Any]:
        """The variables as a template sees them (the hash included: it is what lands on the media)."""
        data = dataclasses.asdict(self)
        data["disk_layout"] = self.disk_layout.value
        mirror = urlsplit(self.mirror) if self.mirror else None
        data["mirror_host"] = mirror.netloc if mirror else ""
        data["mirror_directory"] = (mirror.path or "/") if mirror else ""
        data["mirror_scheme"] = mirror.scheme if mirror else ""
        data["preseed_late_command"] = self._preseed_late_command()
        return data

    def _preseed_late_command(self) -> str:
        """d-i's late_command is one shell line run outside the target: keys and sudo, then the user's commands."""
        home, cmds = f"/target/home/{self.username}", []
        if self.ssh_authorized_keys:
            keys = " ".join(shlex.quote(k) for k in self.ssh_authorized_keys)
            cmds += [f"mkdir -p {home}/.ssh", f"printf '%s\\n' {keys} > {home}/.ssh/authorized_keys",
                     f"chmod 700 {home}/.ssh", f"chmod 600 {home}/.ssh/authorized_keys",
                     f"in-target chown -R {self.username}:{self.username} /home/{self.username}/.ssh"]
        if self.sudo_nopasswd:
            sudoers = f"/target/etc/sudoers.d/{self.username}"
            cmds += [f"echo '{self.username} ALL=(ALL) NOPASSWD:ALL' > {sudoers}", f"chmod 0440 {sudoers}"]
        return " ; ".join([*cmds, *self.late_commands])


def from_template(values: Mapping[str, str], extra: Sequence[str] = (), *, login_needed: bool = True) -> PreseedVars:
    """PreseedVars from a template's `preseed_vars` map plus the build's own KEY=VALUE pairs (user, key,
    password); problems are worded `preseed_vars.KEY: ...` (the CLI's wording is `--var KEY`)."""
    try:
        return PreseedVars.from_pairs([*(f"{k}={v}" for k, v in values.items()), *extra], login_needed=login_needed)
    except FactoryErrors as exc:
        raise FactoryErrors([_template_wording(e) for e in exc.errors]) from None
    except FactoryError as exc:
        raise _template_wording(exc) from None


@PRESEED_VARS.implement
def check_template_vars(values: Mapping[str, Any]) -> PreseedVars:
    """`preseed_vars` are the variables `factory iso-build --var` takes, with the same checks (the schema's
    PRESEED_VARS check, run when the template is read so a problem names file:line). No password is demanded:
    with none in preseed_vars the build supplies one (ssh_password or an unguessable one)."""
    try:
        return from_template({str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()},
                             login_needed=False)
    except FactoryErrors as exc:
        raise FactoryError("; ".join(e.message for e in exc.errors), hint=exc.errors[0].hint) from None


def _template_wording(err: FactoryError) -> FactoryError:
    text = err.message.removeprefix("--var ").replace("(--var password=", "(password=")
    return FactoryError(f"preseed_vars.{text}", hint=err.hint)


_LIST_FIELDS = ("ssh_authorized_keys", "packages", "late_commands")
_BOOL_FIELDS = ("poweroff", "sudo_nopasswd", "ssh_password_auth")


def _list_items(key: str, value: str) -> list[str]:
    if key == "packages":
        return [v.strip() for v in value.split(",")]
    if key == "ssh_authorized_keys" and value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise FactoryError(f"--var ssh_authorized_keys: cannot read {path}: {exc.strerror}") from exc
        return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [value]
_BOOLS = {"true": True, "yes": True, "1": True, "on": True, "false": False, "no": False, "0": False, "off": False}


def _short(text: str) -> str:
    return text if len(text) < 40 else text[:37] + "..."


def _is_ssh_key(key: str) -> bool:
    parts = key.split()
    if len(parts) < 2 or "\n" in key or "'" in key:
        return False
    if not (parts[0].startswith(("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"))):
        return False
    try:
        base64.b64decode(parts[1], validate=True)
    except ValueError:
        return False
    return True


def hash_password(password: str, *, salt: str | None = None) -> str:
    """SHA-512 crypt ($6$) of password, computed by `openssl passwd -6` (password on stdin, never argv).

    Python's crypt module is deprecated (removed in 3.13) and passlib is unmaintained; OpenSSL is on every
    host factory supports. The default salt is derived from the password so the same inputs render the same
    media (the remaster caches by rendered config); pass salt= for a random one.
    """
    if not password or "\n" in password:
        raise FactoryError("password: must be a non-empty single line")
    secrets.register(password)
    if salt is None:
        digest = hashlib.sha256(b"factory-preseed-salt\0" + password.encode()).digest()
        salt = base64.b64encode(digest, altchars=b"./").decode()[:16]
    proc = run.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password.encode() + b"\n")
    hashed = proc.stdout.decode().strip()
    if not SHA512_CRYPT_RE.match(hashed):
        raise FactoryError(f"openssl passwd -6 returned something that is not a SHA-512 crypt hash: {hashed[:8]}...")
    secrets.register(hashed)
    return hashed


@dataclass(frozen=True)
class RenderedConfig:
    """The files an installer reads, keyed by their path on the media; validated when built by render()."""

    family: InstallerFamily
    files: dict[str, bytes] = field(default_factory=dict)

    def digest(self) -> str:
        """sha256 over every (path, content) pair in path order: the cache key for media carrying it."""
        h = hashlib.sha256(self.family.value.encode() + b"\0")
        for path in sorted(self.files):
            content = self.files[path]
            h.update(f"{path}\0{len(content)}\0".encode())
            h.update(content)
        return h.hexdigest()


def template_dir(family: InstallerFamily) -> Path:
    return paths.data_dir("preseeds") / family.value


def render(family: InstallerFamily, vars: PreseedVars, *, template: Path | None = None,
           ready_file: Path | None = None) -> RenderedConfig:
    """Render (or take ready-made) the config for family, validate it, and return the media files."""
    if template is not None and ready_file is not None:
        raise FactoryError("give either a template or a ready config file, not both")
    main_path, main_template = next(iter(TEMPLATES[family].items()))
    files: dict[str, bytes] = {}
    if ready_file is not None:
        files[main_path] = _read_user_file(ready_file)
    else:
        source = template if template is not None else template_dir(family) / main_template
        files[main_path] = _render_file(source, vars).encode()
    for path, name in list(TEMPLATES[family].items())[1:]:
        files[path] = _render_file(template_dir(family) / name, vars).encode()
    config = RenderedConfig(family, files)
    check(config, origin=str(ready_file or template or "") or None)
    return config


def check(config: RenderedConfig, *, origin: str | None = None) -> None:
    """Validate every file of a rendered config with the family's own validator."""
    for path, content in config.files.items():
        try:
            text = content.decode()
        except UnicodeDecodeError as exc:
            raise FactoryError(f"{path}: not UTF-8 text", where=Location(origin or path)) from exc
        where = origin or path
        if path == "nocloud/user-data":
            validate.check_user_data(text, where)
        elif path == "nocloud/meta-data":
            _check_meta_data(text, path)
        elif path == "preseed.cfg":
            validate.check_preseed(text, where)
        elif path == "ks.cfg":
            validate.check_kickstart(text, where)


def _check_meta_data(text: str, file: str) -> None:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FactoryError(f"meta-data: invalid YAML: {exc}", where=Location(file)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("instance-id"), str):
        raise FactoryError("meta-data.instance-id: required", where=Location(file))


def _read_user_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FactoryError(f"cannot read {path}: {exc.strerror}") from exc


def _render_file(source: Path, vars: PreseedVars) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(source.parent)]),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
        autoescape=False,
    )
    # JSON is valid YAML, so tojson quotes any value safely inside user-data.
    env.filters["yaml"] = lambda v: json.dumps(v)
    try:
        tmpl = env.get_template(source.name)
        return tmpl.render(v=vars.public())
    except jinja2.TemplateNotFound as exc:
        raise FactoryError(f"template {source} not found") from exc
    except UnicodeDecodeError:
        # jinja2 reads the file as UTF-8; say where it is not, as for every other text file factory reads.
        from factory.textfile import decode_text

        decode_text(source.read_bytes(), str(source), "template")
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise FactoryError(f"template syntax error: {exc.message}",
                           where=Location(str(exc.filename or source), exc.lineno)) from exc
    except jinja2.UndefinedError as exc:
        raise FactoryError(f"template {source}: {exc.message}",
                           hint="templates see the variables as v.<name>: " + ", ".join(sorted(vars.public())),
                           where=Location(str(source))) from exc


# --- a login when the user gave none (factory iso-build with no password and no key) ---------------------------

@dataclass(frozen=True)
class DefaultLogin:
    """What factory adds so a bare `iso-build` still yields a system someone can log in to."""

    pairs: tuple[str, ...]      # extra KEY=VALUE variables
    said: str                   # one sentence for the user: which login was chosen
    password: str | None = None  # a generated password, to print once at the very end (stored nowhere else)


def default_login(pairs: Sequence[str], *, home: Path | None = None) -> DefaultLogin | None:
    """None when the user named a password or keys; else the invoking user's SSH keys (password locked), or a
    random password when there are no keys either."""
    given = {p.partition("=")[0].strip().replace("-", "_") for p in pairs}
    if given & {"password", "password_hash", "ssh_authorized_keys"}:
        return None
    keys, where = invoking_user_keys(home)
    if keys:
        # `passwd -l` puts a "!" before the hash: the account cannot log in by password, only with the keys.
        locked = "!" + hash_password(token_urlsafe(24))
        return DefaultLogin((f"password_hash={locked}", "ssh_password_auth=false",
                             *(f"ssh_authorized_keys={k}" for k in keys)),
                            f"no password or key given: authorised {len(keys)} SSH key(s) from {where}; "
                            "the password is locked")
    password = token_urlsafe(12)
    return DefaultLogin((f"password={password}",),
                        "no password or key given and no SSH key found (ssh-agent, ~/.ssh/*.pub): generated a "
                        "password, printed once at the end and stored nowhere else", password)


def invoking_user_keys(home: Path | None = None) -> tuple[list[str], str]:
    """The public keys of whoever runs factory: ssh-agent's first, else ~/.ssh/*.pub (the sudo user's home
    under sudo). Returns the keys and where they came from."""
    if os.environ.get("SSH_AUTH_SOCK"):
        proc = run.run(["ssh-add", "-L"], check=False)
        keys = [line.strip() for line in proc.stdout.decode(errors="replace").splitlines() if _is_ssh_key(line)]
        if keys:
            return keys, "ssh-agent"
    home = home or _invoking_home()
    files = sorted((home / ".ssh").glob("*.pub")) if (home / ".ssh").is_dir() else []
    keys, used = [], []
    for file in files:
        try:
            found = [ln.strip() for ln in file.read_text(errors="replace").splitlines() if _is_ssh_key(ln.strip())]
        except OSError:
            continue
        if found:
            keys += found
            used.append(str(file))
    return keys, ", ".join(used)


def _invoking_home() -> Path:
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user and os.geteuid() == 0:
        try:
            return Path(pwd.getpwnam(sudo_user).pw_dir)
        except KeyError:
            pass
    return Path.home()

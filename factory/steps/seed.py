"""What goes on the extra CD (cd_files / cd_content), and how the ephemeral SSH key gets into a NoCloud seed.

Packer leaves key injection to the template author; factory injects its per-build public key into the
cloud-config for `ssh_username` when no password or key file is configured, so a plain cloud image works.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping
from pathlib import Path

from factory.errors import FactoryError
from factory.placeholders import expand

CLOUD_CONFIG = "#cloud-config"


def collect_files(root: Path, cd_files: tuple[str, ...], cd_content: Mapping[str, str],
                  values: Mapping[str, str]) -> dict[str, bytes | Path]:
    """The CD's files: cd_files (globs, directories recursively) then cd_content (wins; placeholders expanded)."""
    files: dict[str, bytes | Path] = {}
    for pattern in cd_files:
        matches = sorted(glob.glob(str(root / pattern)))
        if not matches:
            raise FactoryError(f"cd_files: {pattern!r} matches no file (relative to {root})")
        for match in map(Path, matches):
            if match.is_dir():
                for f in sorted(p for p in match.rglob("*") if p.is_file()):
                    files[str(f.relative_to(match.parent))] = f
            else:
                files[match.name] = match
    for name, text in cd_content.items():
        files[name.lstrip("/")] = expand(text, values, where=f"cd_content[{name!r}]").encode()
    return files


def _user_entry(username: str, public_key: str) -> dict[str, object]:
    return {"name": username, "sudo": "ALL=(ALL) NOPASSWD:ALL", "shell": "/bin/bash", "lock_passwd": True,
            "ssh_authorized_keys": [public_key]}


def inject_key(user_data: bytes, username: str, public_key: str) -> bytes:
    """Add public_key to username's authorized keys in a #cloud-config (creating the user if absent)."""
    text = user_data.decode()
    if public_key in text:
        return user_data
    if not text.lstrip().startswith(CLOUD_CONFIG):
        raise FactoryError("cd_content user-data is not a #cloud-config, so factory cannot add its SSH key",
                           hint="set ssh_password or ssh_private_key_file, or use {{ .SSHPublicKey }} in it")
    import yaml  # here, not at the top: only a cd_content user-data without the key needs it (~20 ms to import)

    doc = yaml.safe_load(text) or {}
    if not isinstance(doc, dict):
        raise FactoryError("cd_content user-data: the #cloud-config is not a mapping")
    users = doc.get("users")
    if users is None:
        doc["users"] = [_user_entry(username, public_key)]
    else:
        for user in users:
            if isinstance(user, dict) and user.get("name") == username:
                user.setdefault("ssh_authorized_keys", []).append(public_key)
                break
        else:
            users.append(_user_entry(username, public_key))
    return (CLOUD_CONFIG + "\n" + yaml.safe_dump(doc, sort_keys=False)).encode()


def nocloud_seed(files: dict[str, bytes | Path], *, username: str, public_key: str | None,
                 instance_id: str) -> dict[str, bytes | Path]:
    """Complete a NoCloud seed: meta-data if missing, the ephemeral key injected into user-data."""
    out = dict(files)
    if public_key is not None:
        current = out.get("user-data", CLOUD_CONFIG.encode() + b"\n")
        data = current.read_bytes() if isinstance(current, Path) else current
        out["user-data"] = inject_key(data, username, public_key)
    out.setdefault("meta-data", f"instance-id: {instance_id}\nlocal-hostname: {instance_id}\n".encode())
    return out

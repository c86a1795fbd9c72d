"""Logging in over an established SSH transport: keys (with certificates), the SSH agent, passwords and
keyboard-interactive (answered with the password, or at the terminal for ssh_bastion_interactive)."""

from __future__ import annotations

import contextlib
import getpass
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import paramiko

from factory.comm.wait import Attempt, Seen
from factory.errors import FactoryError


@dataclass(frozen=True)
class Login:
    """Who logs in and with what: the target's credentials or the bastion's."""

    username: str
    password: str | None = field(default=None, repr=False)
    keys: tuple[paramiko.PKey, ...] = ()
    agent: bool = False          # offer the keys of the agent at SSH_AUTH_SOCK
    interactive: bool = False    # keyboard-interactive answered by the user at the terminal

    def check(self, what: str) -> None:
        """Fail at once on a login that cannot work (no credentials, agent asked for but absent)."""
        if self.agent and not os.environ.get("SSH_AUTH_SOCK"):
            raise FactoryError(f"{what}: agent authentication is set but SSH_AUTH_SOCK is not",
                               hint="start ssh-agent and ssh-add your key, or give a private key file")
        if self.interactive:
            _open_terminal().close()
        if not (self.password or self.keys or self.agent or self.interactive):
            raise FactoryError(f"no SSH credentials for {what}",
                               hint="set ssh_password or ssh_private_key_file, or let factory generate a key pair")


@contextlib.contextmanager
def _agent_keys(enabled: bool) -> Iterator[Sequence[paramiko.PKey]]:
    if not enabled:
        yield ()
        return
    agent = paramiko.Agent()
    try:
        yield agent.get_keys()
    finally:
        agent.close()


def authenticate(transport: paramiko.Transport, login: Login) -> Attempt | None:
    """Try the keys, the agent's keys, the password (also as keyboard-interactive), then the terminal;
    None when logged in, else the Attempt that says what was refused."""
    tried: list[str] = []
    try:
        with _agent_keys(login.agent) as agent_keys:
            for key in (*login.keys, *agent_keys):
                try:
                    transport.auth_publickey(login.username, key)
                    return None
                except paramiko.AuthenticationException as exc:
                    tried.append(f"{_describe(key)}: {exc}")
        if login.password and _password(transport, login.username, login.password, tried):
            return None
        if login.interactive:
            transport.auth_interactive(login.username, _ask_terminal)
            return None
    except paramiko.AuthenticationException as exc:
        tried.append(f"keyboard-interactive: {exc}")
    except (paramiko.SSHException, EOFError, OSError) as exc:
        return Attempt(Seen.HANDSHAKE, f"during authentication: {exc}")
    return Attempt(Seen.AUTH, f"user {login.username!r}: " + ("; ".join(tried) or "no method accepted"))


def _describe(key: paramiko.PKey) -> str:
    kind = "agent " if isinstance(key, paramiko.AgentKey) else ""
    cert = " certificate" if key.public_blob is not None and "cert" in key.public_blob.key_type else ""
    return f"{kind}{key.get_name()}{cert} key"


def _password(transport: paramiko.Transport, username: str, password: str, tried: list[str]) -> bool:
    """Password, then keyboard-interactive answering every prompt with it (what PAM-based sshds ask for)."""
    try:
        transport.auth_password(username, password)
        return True
    except paramiko.BadAuthenticationType as exc:
        if "keyboard-interactive" not in exc.allowed_types:
            tried.append(f"password not allowed (server allows {', '.join(exc.allowed_types)})")
            return False
    except paramiko.AuthenticationException as exc:
        tried.append(f"password: {exc}")
        return False
    try:
        transport.auth_interactive(username, lambda _t, _i, prompts: [password for _ in prompts])
        return True
    except paramiko.AuthenticationException as exc:
        tried.append(f"keyboard-interactive: {exc}")
        return False


def _open_terminal() -> io.TextIOWrapper:
    """The controlling terminal for reading and writing (as getpass opens it), or a clear error."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        raise FactoryError("ssh_bastion_interactive needs a terminal to ask for the answers, and factory has "
                           "none (CI, or no controlling tty)",
                           hint="use ssh_bastion_password, ssh_bastion_private_key_file or ssh_bastion_agent_auth"
                           ) from None
    return io.TextIOWrapper(io.FileIO(fd, "w+"), write_through=True)


def _ask_terminal(title: str, instructions: str, prompts: Sequence[tuple[str, bool]]) -> list[str]:
    """Keyboard-interactive prompts shown on the controlling terminal, as Packer does for the bastion."""
    with _open_terminal() as tty:
        for text in (title, instructions):
            if text:
                tty.write(text.rstrip() + "\n")
        answers = []
        for prompt, echo in prompts:
            if echo:
                tty.write(prompt)
                answers.append(tty.readline().rstrip("\n"))
            else:
                answers.append(getpass.getpass(prompt, stream=tty))
    return answers

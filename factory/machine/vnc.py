"""VNC for the user to watch a build (factory itself types keys through QMP and never needs it).

The port comes from vnc_port_min..vnc_port_max under the same per-port cross-process lock as the SSH forward
(factory.machine.ports). A password is set through QMP after QEMU starts (`password=on` until then refuses
everyone), so it never appears in QEMU's argv, `ps` or the logs.
"""

from __future__ import annotations

import ipaddress
import secrets as pysecrets
import string
from dataclasses import dataclass, field

from factory import secrets
from factory.errors import FactoryError
from factory.machine.ports import PortLease, reserve
from factory.schema.values import MAX_VNC_PASSWORD as MAX_PASSWORD
from factory.schema.values import VNC_BASE_PORT
from factory.schema.values import check_vnc_password as check_password
from factory.schema.values import check_vnc_port_min as check_port_min


@dataclass(frozen=True)
class VncSpec:
    """A VNC server for the user to watch the console; the password is set through the monitor, never argv."""

    host: str
    port: int
    password: str | None = field(default=None, repr=False)
    port_max: int | None = None          # QEMU moves up to this port if another program took `port` meanwhile


def check_range(low: int, high: int) -> None:
    check_port_min(low)
    if low > high or high > 65535:
        raise FactoryError(f"vnc_port_min..vnc_port_max is empty or invalid: {low}..{high}",
                           hint="set vnc_port_min <= vnc_port_max (defaults 5900..6000)")


def generate_password() -> str:
    """A random 8-character password (Packer's behaviour when vnc_use_password has no vnc_password)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(pysecrets.choice(alphabet) for _ in range(MAX_PASSWORD))


def check_bind_address(host: str) -> None:
    try:
        if ipaddress.ip_address(host).version == 6:
            raise FactoryError(f"vnc_bind_address {host!r}: IPv6 addresses are not supported yet",
                               hint="use an IPv4 address such as 127.0.0.1 or 0.0.0.0")
    except ValueError:
        pass  # a host name: QEMU resolves it


def reserve_vnc(host: str, low: int, high: int, password: str | None) -> tuple[VncSpec, PortLease]:
    """Validate the options, then lock a free port; the password is registered as a secret."""
    check_range(low, high)
    check_bind_address(host)
    if password is not None:
        check_password(password)
        secrets.register(password)
    lease = reserve(low, high, purpose="VNC (vnc_port_min..vnc_port_max)", host=host)
    return VncSpec(host=host, port=lease.port, password=password, port_max=high), lease


def qemu_arg(spec: VncSpec) -> str:
    """The -vnc value: host and display number; `to=` lets QEMU itself move on to the next free display when a
    program outside factory bound the reserved port after factory checked it (QEMU's bind is the arbiter);
    `password=on` when a password will be set."""
    arg = f"{spec.host}:{spec.port - VNC_BASE_PORT}"
    if spec.port_max is not None and spec.port_max > spec.port:
        arg += f",to={spec.port_max - VNC_BASE_PORT}"
    return arg + ",password=on" if spec.password is not None else arg


def address(spec: VncSpec, port: int | None = None) -> str:
    host = "127.0.0.1" if spec.host in ("0.0.0.0", "") else spec.host
    return f"vnc://{host}:{port or spec.port}"


def connection_message(spec: VncSpec, password_source: str | None, port: int | None = None) -> str:
    """What the user is told, as Packer does; password_source says where the password is (never the value)."""
    if spec.password is None:
        return f"to watch the VM's screen, connect via VNC without a password to {address(spec, port)}"
    return (f"to watch the VM's screen, connect via VNC to {address(spec, port)} with the password "
            f"{password_source}")

"""IP network functions (cidrhost, cidrnetmask, cidrsubnet, cidrsubnets)."""

from __future__ import annotations

import ipaddress
from typing import Any

from factory.template.functions import FuncError, function
from factory.template.functions.numeric import num
from factory.template.functions.text import s


def _net(prefix: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(s(prefix), strict=False)
    except ValueError as exc:
        raise FuncError(f"invalid CIDR prefix: {exc}", 0) from None


def _whole(value: Any, arg: int) -> int:
    n = num(value, arg)
    if not isinstance(n, int):
        raise FuncError("a whole number is required", arg)
    return n


@function("cidrhost", "network", "The IP address of host number N in a CIDR prefix (negative counts from the end).")
def cidrhost(prefix: Any, hostnum: Any) -> str:
    net, n = _net(prefix), _whole(hostnum, 1)
    if not -net.num_addresses <= n < net.num_addresses:
        raise FuncError(f"prefix {net} has no host number {n}", 1)
    return str(net[n])


@function("cidrnetmask", "network", "The dotted netmask of an IPv4 CIDR prefix.")
def cidrnetmask(prefix: Any) -> str:
    net = _net(prefix)
    if net.version != 4:
        raise FuncError("cidrnetmask works on IPv4 prefixes only", 0)
    return str(net.netmask)


@function("cidrsubnet", "network", "Subnet number N of a prefix extended by newbits.")
def cidrsubnet(prefix: Any, newbits: Any, netnum: Any) -> str:
    net, bits, n = _net(prefix), _whole(newbits, 1), _whole(netnum, 2)
    if bits < 0 or net.prefixlen + bits > net.max_prefixlen:
        raise FuncError(f"cannot extend prefix {net} by {bits} bits", 1)
    if not 0 <= n < 2 ** bits:
        raise FuncError(f"prefix extension of {bits} bits has no subnet number {n}", 2)
    base = int(net.network_address) + (n << (net.max_prefixlen - net.prefixlen - bits))
    return f"{ipaddress.ip_address(base)}/{net.prefixlen + bits}"


@function("cidrsubnets", "network", "Consecutive subnets of a prefix, one per given number of new bits.")
def cidrsubnets(prefix: Any, *newbits: Any) -> list[str]:
    net = _net(prefix)
    out: list[str] = []
    cursor = int(net.network_address)
    end = int(net.broadcast_address)
    for i, nb in enumerate(newbits, 1):
        bits = _whole(nb, i)
        length = net.prefixlen + bits
        if bits < 1 or length > net.max_prefixlen:
            raise FuncError(f"cannot extend prefix {net} by {bits} bits", i)
        size = 1 << (net.max_prefixlen - length)
        cursor = (cursor + size - 1) // size * size   # align to the subnet size
        if cursor + size - 1 > end:
            raise FuncError(f"not enough room in {net} for the requested subnets", i)
        out.append(f"{ipaddress.ip_address(cursor)}/{length}")
        cursor += size
    return out

"""Hash and UUID functions."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import bcrypt as _bcrypt

from factory.template.functions import FuncError, function
from factory.template.functions.numeric import num
from factory.template.functions.text import s


@function("md5", "hash", "Hex MD5 of a string's UTF-8 bytes.")
def md5(x: Any) -> str:
    return hashlib.md5(s(x).encode(), usedforsecurity=False).hexdigest()


@function("sha1", "hash", "Hex SHA-1 of a string.")
def sha1(x: Any) -> str:
    return hashlib.sha1(s(x).encode(), usedforsecurity=False).hexdigest()


@function("sha256", "hash", "Hex SHA-256 of a string.")
def sha256(x: Any) -> str:
    return hashlib.sha256(s(x).encode()).hexdigest()


@function("sha512", "hash", "Hex SHA-512 of a string.")
def sha512(x: Any) -> str:
    return hashlib.sha512(s(x).encode()).hexdigest()


@function("bcrypt", "hash", "Bcrypt hash of a string (cost 10 unless given).")
def bcrypt(x: Any, *cost: Any) -> str:
    rounds = int(num(cost[0], 1)) if cost else 10
    if not 4 <= rounds <= 31:
        raise FuncError("the bcrypt cost must be between 4 and 31", 1)
    return _bcrypt.hashpw(s(x).encode(), _bcrypt.gensalt(rounds, prefix=b"2a")).decode()


@function("uuidv4", "hash", "A new random UUID (a different value on every call).")
def uuidv4() -> str:
    return str(uuid.uuid4())


_NAMESPACES = {"dns": uuid.NAMESPACE_DNS, "url": uuid.NAMESPACE_URL, "oid": uuid.NAMESPACE_OID,
               "x500": uuid.NAMESPACE_X500}


@function("uuidv5", "hash", "Name-based UUID (SHA-1) in a namespace: dns, url, oid, x500 or a UUID.")
def uuidv5(namespace: Any, name: Any) -> str:
    ns = s(namespace)
    try:
        space = _NAMESPACES.get(ns) or uuid.UUID(ns)
    except ValueError:
        raise FuncError(f'unknown namespace "{ns}" (dns, url, oid, x500 or a UUID)', 0) from None
    return str(uuid.uuid5(space, s(name, 1)))

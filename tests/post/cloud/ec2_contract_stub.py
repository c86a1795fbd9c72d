"""EC2 VM-Import CONTRACT STUB: an HTTP server speaking the EC2 Query API (version 2016-11-15) for the actions
moto lacks: ImportImage, ImportSnapshot, DescribeImportImageTasks, DescribeImportSnapshotTasks, RegisterImage,
CopyImage, DescribeImages, DeregisterImage, CreateTags, ModifyImageAttribute.

It is a stand-in for AWS's control plane, not a mock of factory: it runs as its own process on 127.0.0.1, accepts
only SigV4-signed requests from the keys it is given or from temporary credentials that moto's STS issued
(AssumeRole/GetSessionToken, looked up with their session token in moto's state, /moto-api/data.json: the way AWS
checks a session token with the STS that issued it), and AuthFailure otherwise, as EC2 answers. It reads the
imported object from the real S3 server (moto) it is pointed at, and answers with the documented XML. Behaviour:
- documented parameter constraints are checked (InvalidParameter otherwise): KmsKeyId needs Encrypted = true;
  LicenseType is AWS or BYOL; Platform is Windows or Linux; BootMode is legacy-bios or uefi for imports (the API
  reference: uefi-preferred is not supported for importing images); Architecture is one of the action's values;
- an import of an object that does not exist is refused (InvalidParameter);
- a task is `active` for two describes (`pending`, then `converting`, with Progress), then `completed`;
- a task whose object does not start with the format's magic (VMDK `KDMV`, VHD footer `conectix`, OVA `ustar`)
  fails: status `deleted`, StatusMessage `ClientError: Disk validation failed [Unsupported <FMT> File Format]`.
GET /_stub/calls returns every accepted call (action, region, parameters, the access key that signed it and
whether a session token came with it) as JSON, for tests to assert on.

    python ec2_contract_stub.py --s3-endpoint http://127.0.0.1:PORT --key AKID:SECRET   (prints "PORT <n>")
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import re
import threading
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from stub_http import QuietHandler, serve

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
MAGIC = {"VMDK": (0, b"KDMV"), "VHD": (-512, b"conectix"), "OVA": (257, b"ustar")}
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})")


class Cloud:
    """The stub's state: tasks, images and snapshots per region, and the call log."""

    def __init__(self, s3_endpoint: str, keys: dict[str, str]) -> None:
        import boto3

        self.keys = keys
        self.sts_state = s3_endpoint.rstrip("/") + "/moto-api/data.json"   # moto serves STS on the same port
        # verify=False: a test may run moto with its self-signed certificate (`moto.server --ssl`); loopback only
        self.s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", verify=False,
                               aws_access_key_id="stub", aws_secret_access_key="stub")
        self.lock = threading.Lock()
        self.ids = itertools.count(0x1000)
        self.tasks: dict[str, dict[str, Any]] = {}
        self.images: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self.ids):017x}"

    def object_check(self, bucket: str, key: str, fmt: str) -> tuple[bool, str | None]:
        """(exists, failure message of the validation the import would do)."""
        try:
            size = self.s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        except Exception:
            return False, None
        where, magic = MAGIC.get(fmt.upper(), (0, b""))
        start = where if where >= 0 else size + where
        got = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{start + len(magic) - 1}")
        if magic and got["Body"].read() != magic:
            return True, f"ClientError: Disk validation failed [Unsupported {fmt.upper()} File Format]"
        return True, None

    def session_secret(self, akid: str, token: str) -> str | None:
        """The secret of temporary credentials moto's STS issued with this session token, else None."""
        import ssl
        import urllib.request

        with urllib.request.urlopen(self.sts_state, context=ssl._create_unverified_context()) as resp:
            state = json.load(resp).get("sts", {})
        for cred in state.get("AssumedRole", []) + state.get("Token", []):
            if cred.get("access_key_id") == akid and cred.get("session_token") == token:
                return str(cred["secret_access_key"])
        return None


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _verify(cloud: Cloud, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[str, str]:
    """Check the SigV4 signature exactly as AWS computes it; return (region of the credential scope, key id)."""
    match = _AUTH.fullmatch(headers.get("authorization", ""))
    if match is None:
        raise Refused(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
    akid, date, region, service, signed, signature = match.groups()
    secret = cloud.keys.get(akid)
    if secret is None and "x-amz-security-token" in headers:
        secret = cloud.session_secret(akid, headers["x-amz-security-token"])
    if secret is None:
        raise Refused(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
    names = signed.split(";")
    canonical_headers = "".join(f"{n}:{' '.join(headers.get(n, '').split())}\n" for n in names)
    canonical = "\n".join([method, path or "/", "", canonical_headers, signed, hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", headers.get("x-amz-date", ""), scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature):
        raise Refused(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
    return region, akid


_ARCHITECTURES = {"ImportImage": ("i386", "x86_64", "arm64"),
                  "RegisterImage": ("i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac")}
_BOOT_MODES = {"ImportImage": ("legacy-bios", "uefi"), "RegisterImage": ("legacy-bios", "uefi", "uefi-preferred")}


def _check_documented(action: str, params: dict[str, str]) -> None:
    """The constraints the API reference documents for the parameters factory sends."""
    def bad(message: str) -> Refused:
        return Refused(400, "InvalidParameter", message)

    if "KmsKeyId" in params and params.get("Encrypted") != "true":
        raise bad("KmsKeyId was specified but the Encrypted flag is not set")
    if params.get("LicenseType", "AWS") not in ("AWS", "BYOL"):
        raise bad(f"Invalid value '{params['LicenseType']}' for LicenseType")
    if params.get("Platform", "linux").lower() not in ("windows", "linux"):
        raise bad(f"Invalid value '{params['Platform']}' for Platform")
    if action in _BOOT_MODES and params.get("BootMode", "legacy-bios") not in _BOOT_MODES[action]:
        raise bad(f"Invalid value '{params['BootMode']}' for BootMode")
    if action in _ARCHITECTURES and params.get("Architecture", "x86_64") not in _ARCHITECTURES[action]:
        raise bad(f"Invalid value '{params['Architecture']}' for Architecture")


def _members(params: dict[str, str], prefix: str) -> list[str]:
    """Values of a Query API list: Prefix.1, Prefix.2 ..."""
    out, i = [], 1
    while f"{prefix}.{i}" in params:
        out.append(params[f"{prefix}.{i}"])
        i += 1
    return out


def _tag(name: str, value: Any) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def _advance(cloud: Cloud, task: dict[str, Any]) -> None:
    """One describe moves a task along: pending -> converting -> completed (or deleted with its message)."""
    task["polls"] += 1
    if task["status"] != "active":
        return
    if task["polls"] == 1:
        task["message"], task["progress"] = "converting", "28"
    elif task["failure"]:
        task["status"], task["message"], task["progress"] = "deleted", task["failure"], ""
    elif task["polls"] >= 2:
        snap = cloud.new_id("snap")
        task["status"], task["message"], task["progress"], task["snapshot"] = "completed", "", "", snap
        if task["kind"] == "image":
            ami = cloud.new_id("ami")
            task["image"] = ami
            cloud.images[(task["region"], ami)] = {"name": f"import-{ami}", "description": "", "snapshot": snap,
                                                   "state": "available", "arch": task["arch"]}


def _start_task(cloud: Cloud, region: str, params: dict[str, str], kind: str) -> dict[str, Any]:
    disk = "DiskContainer.1." if kind == "image" else "DiskContainer."
    bucket, key = params.get(disk + "UserBucket.S3Bucket", ""), params.get(disk + "UserBucket.S3Key", "")
    fmt = params.get(disk + "Format", "RAW")
    exists, failure = cloud.object_check(bucket, key, fmt)
    if not exists:
        raise Refused(400, "InvalidParameter", f"The specified S3 object s3://{bucket}/{key} does not exist")
    task = {"id": cloud.new_id("import-ami" if kind == "image" else "import-snap"), "kind": kind,
            "region": region, "status": "active", "message": "pending", "progress": "2", "polls": 0,
            "failure": failure, "arch": params.get("Architecture", "x86_64"), "format": fmt}
    cloud.tasks[task["id"]] = task
    return task


def _task_xml(task: dict[str, Any]) -> str:
    inner = _tag("status", task["status"]) + _tag("statusMessage", task["message"])
    if task["progress"]:
        inner += _tag("progress", task["progress"])
    if task["kind"] == "image":
        return _tag("importTaskId", task["id"]) + inner + (_tag("imageId", task["image"]) if task.get("image")
                                                          else "")
    detail = inner + _tag("format", task["format"]) + (_tag("snapshotId", task["snapshot"])
                                                       if task.get("snapshot") else "")
    return _tag("importTaskId", task["id"]) + f"<snapshotTaskDetail>{detail}</snapshotTaskDetail>"


def _image(cloud: Cloud, region: str, ami: str) -> dict[str, Any]:
    image = cloud.images.get((region, ami))
    if image is None:
        raise Refused(400, "InvalidAMIID.NotFound", f"The image id '[{ami}]' does not exist")
    return image


def act(cloud: Cloud, region: str, params: dict[str, str]) -> str:
    """The XML body (inside the response element) of one action."""
    action = params.get("Action", "")
    _check_documented(action, params)
    if action in ("ImportImage", "ImportSnapshot"):
        return _task_xml(_start_task(cloud, region, params, "image" if action == "ImportImage" else "snapshot"))
    if action in ("DescribeImportImageTasks", "DescribeImportSnapshotTasks"):
        items = ""
        for tid in _members(params, "ImportTaskId"):
            if tid not in cloud.tasks:
                raise Refused(400, "InvalidConversionTaskId.Malformed", f"The task ID '{tid}' does not exist")
            _advance(cloud, cloud.tasks[tid])
            items += f"<item>{_task_xml(cloud.tasks[tid])}</item>"
        name = "importImageTaskSet" if action == "DescribeImportImageTasks" else "importSnapshotTaskSet"
        return f"<{name}>{items}</{name}>"
    if action == "RegisterImage":
        ami = cloud.new_id("ami")
        cloud.images[(region, ami)] = {"name": params["Name"], "description": params.get("Description", ""),
                                       "snapshot": params.get("BlockDeviceMapping.1.Ebs.SnapshotId", ""),
                                       "state": "available", "arch": params.get("Architecture", "x86_64")}
        return _tag("imageId", ami)
    if action == "CopyImage":
        source = _image(cloud, params["SourceRegion"], params["SourceImageId"])
        ami = cloud.new_id("ami")
        cloud.images[(region, ami)] = dict(source, name=params["Name"], snapshot=cloud.new_id("snap"),
                                           description=params.get("Description", source["description"]))
        return _tag("imageId", ami)
    if action == "DescribeImages":
        items = ""
        for ami in _members(params, "ImageId"):
            im = _image(cloud, region, ami)
            items += ("<item>" + _tag("imageId", ami) + _tag("imageState", im["state"]) + _tag("name", im["name"])
                      + _tag("description", im["description"]) + _tag("architecture", im["arch"])
                      + "<blockDeviceMapping><item>" + _tag("deviceName", "/dev/xvda")
                      + f"<ebs>{_tag('snapshotId', im['snapshot'])}</ebs></item></blockDeviceMapping></item>")
        return f"<imagesSet>{items}</imagesSet>"
    if action == "DeregisterImage":
        cloud.images.pop((region, params["ImageId"]), None)
        return _tag("return", "true")
    if action == "ModifyImageAttribute":
        image = _image(cloud, region, params["ImageId"])
        if "Description.Value" in params:
            image["description"] = params["Description.Value"]
        return _tag("return", "true")
    if action == "CreateTags":
        return _tag("return", "true")
    raise Refused(400, "InvalidAction", f"The action {action} is not valid for this web service.")


class Handler(QuietHandler):
    cloud: Cloud

    def _send(self, status: int, body: bytes, ctype: str = "text/xml;charset=UTF-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/_stub/calls":
            with self.cloud.lock:
                self._send(200, json.dumps(self.cloud.calls).encode(), "application/json")
        else:
            self._send(404, b"")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        action = params.get("Action", "")
        try:
            region, akid = _verify(self.cloud, "POST", self.path, headers, body)
            with self.cloud.lock:
                inner = act(self.cloud, region, params)
                self.cloud.calls.append({"action": action, "region": region, "params": params, "akid": akid,
                                         "session_token": "x-amz-security-token" in headers})
        except Refused as exc:
            xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>{_tag("Code", exc.code)}'
                   f'{_tag("Message", exc.message)}</Error></Errors><RequestID>stub</RequestID></Response>')
            self._send(exc.status, xml.encode())
            return
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{NS}">'
               f"<requestId>stub-{len(self.cloud.calls)}</requestId>{inner}</{action}Response>")
        self._send(200, xml.encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--s3-endpoint", required=True)
    ap.add_argument("--key", action="append", default=[], help="ACCESS_KEY_ID:SECRET accepted in signatures")
    args = ap.parse_args()
    Handler.cloud = Cloud(args.s3_endpoint, dict(k.split(":", 1) for k in args.key))
    serve(Handler)


if __name__ == "__main__":
    main()

"""Azure Resource Manager CONTRACT STUB for compute images: an HTTP server answering the documented REST calls
factory makes, plus the App Service managed-identity token endpoint azure-identity reads (IDENTITY_ENDPOINT).

A stand-in for Azure's control plane, not a mock of factory: its own process on 127.0.0.1. It checks the bearer
token it issued, checks the source blob the way Azure does before it makes an image (the page blob exists in the
real Azurite it is pointed at and ends with a fixed VHD footer), and runs the long-running-operation protocol:
PUT answers 201 with an Azure-AsyncOperation URL that reports InProgress once, then Succeeded, or Failed with
Azure's error body when the source blob is unusable, when an image's location is not one of the stub's regions
(--region, ARM's LocationNotAvailableForResourceType message), or when a gallery version's target region is not
(the replication fails). Documented paths:
  PUT/GET /subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/images/NAME
  PUT/GET /subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/galleries/GAL/images/DEF/versions/VER
The gallery image definitions that exist are given with --gallery-image GAL/DEF. GET /_stub/calls lists calls.

    python arm_contract_stub.py --blob-endpoint URL --account NAME --key KEY --identity-header H   ("PORT <n>")
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from stub_http import QuietHandler, serve

_RESOURCE = re.compile(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/"
                       r"(images/[^/]+|galleries/[^/]+/images/[^/]+/versions/[^/]+)$")
TOKEN = "stub-arm-token"


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        from azure.storage.blob import BlobServiceClient

        self.blobs = BlobServiceClient(args.blob_endpoint, credential={"account_name": args.account,
                                                                       "account_key": args.key})
        self.endpoint = args.blob_endpoint.rstrip("/")
        self.identity_header = args.identity_header
        self.gallery_images = set(args.gallery_image)
        self.regions = sorted(args.region)
        self.lock = threading.Lock()
        self.ops: dict[str, dict[str, Any]] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self.ids = itertools.count(1)

    def source_problem(self, uri: str) -> str | None:
        """Why Azure would refuse this blob as an image source, or None."""
        container, _, name = uri.removeprefix(self.endpoint).lstrip("/").partition("/")
        try:
            blob = self.blobs.get_container_client(container).get_blob_client(name)
            props = blob.get_blob_properties()
        except Exception:
            return f"The blob {uri} does not exist."
        if props.blob_type != "PageBlob":
            return f"The blob {uri} is not a page blob."
        footer = blob.download_blob(offset=props.size - 512, length=512).readall()
        if footer[:8] != b"conectix" or footer[60:64] != b"\0\0\0\2":
            return f"The VHD {uri} is not a fixed VHD."
        return None

    def region_problem(self, kind: str, body: dict[str, Any]) -> str | None:
        """Why the operation fails in a region the subscription does not have, or None."""
        listed = ",".join(self.regions)
        if kind == "images" and body.get("location") not in self.regions:
            return (f"The provided location '{body.get('location')}' is not available for resource type "
                    f"'Microsoft.Compute/images'. List of available regions for the resource type is '{listed}'.")
        targets = body.get("properties", {}).get("publishingProfile", {}).get("targetRegions", [])
        for region in [t.get("name") for t in targets]:
            if region not in self.regions:
                return f"Replication failed in this region '{region}'. The region is not one of '{listed}'."
        return None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class Handler(QuietHandler):
    state: State

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._json(401, _error("InvalidAuthenticationToken", "The access token is invalid."))
            return False
        return True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_stub/calls":
            with self.state.lock:
                return self._json(200, self.state.calls)
        if url.path == "/msi/token":
            if self.headers.get("X-IDENTITY-HEADER") != self.state.identity_header:
                return self._json(400, _error("InvalidIdentityHeader", "X-IDENTITY-HEADER is missing or wrong."))
            resource = parse_qs(url.query).get("resource", [""])[0]
            return self._json(200, {"access_token": TOKEN, "expires_on": str(int(time.time()) + 3600),
                                    "resource": resource, "token_type": "Bearer"})
        if not self._authorized():
            return None
        with self.state.lock:
            if url.path.startswith("/operations/"):
                op = self.state.ops[url.path.rsplit("/", 1)[1]]
                op["polls"] += 1
                if op["polls"] == 1:
                    return self._json(200, {"status": "InProgress"}, {"Retry-After": "0"})
                if op["failure"]:
                    code, message = op["failure"]
                    return self._json(200, {"status": "Failed", "error": {"code": code, "message": message}})
                self.state.resources[op["resource"]]["properties"]["provisioningState"] = "Succeeded"
                return self._json(200, {"status": "Succeeded"})
            resource = self.state.resources.get(url.path.lower())
        if resource is None:
            return self._json(404, _error("ResourceNotFound", f"The Resource '{url.path}' was not found."))
        return self._json(200, resource)

    def do_PUT(self) -> None:
        url = urlsplit(self.path)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if not self._authorized():
            return None
        match = _RESOURCE.match(url.path)
        if match is None:
            return self._json(404, _error("InvalidResourceType", f"No resource type at {url.path}."))
        kind = match.group(3).split("/")
        with self.state.lock:
            self.state.calls.append({"method": "PUT", "path": url.path, "query": url.query, "body": body})
            if kind[0] == "galleries" and f"{kind[1]}/{kind[3]}" not in self.state.gallery_images:
                return self._json(404, _error("ResourceNotFound", f"The Resource 'Microsoft.Compute/galleries/"
                                              f"{kind[1]}/images/{kind[3]}' under resource group "
                                              f"'{match.group(2)}' was not found."))
            props = body.get("properties", {})
            profile = props.get("storageProfile", {})
            uri = profile.get("osDisk", {}).get("blobUri") or \
                profile.get("osDiskImage", {}).get("source", {}).get("uri", "")
            op_id = str(next(self.state.ids))
            source, region = self.state.source_problem(uri), self.state.region_problem(kind[0], body)
            failure = ("InvalidParameter", source) if source else \
                ("LocationNotAvailableForResourceType" if kind[0] == "images" else "ReplicationFailed", region) \
                if region else None
            self.state.ops[op_id] = {"polls": 0, "failure": failure, "resource": url.path.lower()}
            resource = {"id": url.path, "name": kind[-1], "location": body.get("location"),
                        "type": "Microsoft.Compute/" + "/".join(kind[0::2]),
                        "properties": dict(props, provisioningState="Creating")}
            self.state.resources[url.path.lower()] = resource
        host = f"http://{self.headers['Host']}"
        return self._json(201, resource, {"Azure-AsyncOperation": f"{host}/operations/{op_id}?api-version=2024",
                                          "Retry-After": "0"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blob-endpoint", required=True)
    ap.add_argument("--account", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--identity-header", required=True)
    ap.add_argument("--gallery-image", action="append", default=[])
    ap.add_argument("--region", action="append", default=["westeurope", "northeurope", "eastus"])
    args = ap.parse_args()
    Handler.state = State(args)
    serve(Handler)


if __name__ == "__main__":
    main()

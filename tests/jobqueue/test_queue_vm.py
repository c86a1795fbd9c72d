"""One real guest build through the queue: the README's example (examples/debian-cloud) on the Debian test guest,
submitted with its disk image as a file input, built by a worker that probed its host (`--queues auto`), its
artifacts fetched back. Run under `flock /tmp/factory-vm.lock` like every VM test."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.guest import GuestImage, debian_guest  # noqa: F401  (fixture)
from tests.fixtures.jobqueue import ROOT, Workers, factory


@pytest.mark.vm
def test_a_worker_builds_the_readme_guest_and_its_artifacts_come_back(
        workers: Workers, debian_guest: GuestImage, tmp_path: Path) -> None:  # noqa: F811
    w = workers.start(queues="auto", heartbeat=5, stalled_after=60)
    assert "probe: tcg: yes" in w.output()
    example = ROOT / "examples" / "debian-cloud"
    proc = factory("submit", "--db", workers.url, "-var", f"guest_image={debian_guest.path}", "-var",
                   "hostname=queued-demo", "--wait", str(example), cwd=tmp_path, timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:] + w.output()[-3000:]
    job = int(proc.stdout.strip().splitlines()[0])
    assert "queued job" in out and "on queue tcg" in out  # accelerator = "auto": any QEMU host
    assert "demo.qemu.cloud: [shell] factory-demo build queued-demo" in out, out[-4000:]
    got = tmp_path / "got"
    fetched = factory("jobs", "fetch", str(job), "--db", workers.url, "--out", str(got), timeout=600)
    assert fetched.returncode == 0, fetched.stderr
    disk = got / "output-debian-cloud" / "debian-cloud.qcow2"
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(disk)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    manifest = json.loads((got / "output-debian-cloud" / "manifest.json").read_text())
    assert manifest["builds"][0]["files"][0]["name"] == "debian-cloud.qcow2"
    shown = json.loads(factory("jobs", "show", str(job), "--db", workers.url).stdout)
    assert shown["status"] == "succeeded" and shown["runs"][0]["worker"].endswith(f":{w.proc.pid}")
    # The worker cleaned its work folder: nothing of the job stays on the host.
    assert not list((tmp_path / "cache-0" / "worker").glob("job-*"))

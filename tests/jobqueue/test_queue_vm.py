"""Real guest builds through the queue: the README's example (examples/debian-cloud) on the Debian test guest,
submitted with its disk image as a file input, built by a worker that probed its host (`--queues auto`), its
artifacts fetched back; and a job whose worker is SIGKILLed mid-build, retried by another worker of the same host,
resuming from the checkpoint the first attempt stored. Run under `flock /tmp/factory-vm.lock` like every VM test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.guest import GuestImage, debian_guest  # noqa: F401  (fixture)
from tests.fixtures.jobqueue import ROOT, Workers, factory, sql, status, wait_for


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


def _resume_template(folder: Path) -> Path:
    """The README's example with two provisioners: the first leaves a checkpoint, the second takes long enough
    for the test to kill the worker while it runs."""
    example = ROOT / "examples" / "debian-cloud"
    shutil.copytree(example, folder)
    hcl = folder / "debian.pkr.hcl"
    text = hcl.read_text()
    build = text.index("build {")
    hcl.write_text(text[:build] + 'build {\n  name    = "demo"\n  sources = ["source.qemu.cloud"]\n'
                   '  provisioner "shell" {\n    inline = ["echo P1-RAN-ON-$(hostname)"]\n  }\n'
                   '  provisioner "shell" {\n    inline = ["echo P2-START", "sleep 45", "echo P2-DONE"]\n  }\n}\n')
    return folder


def _events(url: str, job: int) -> list[tuple[int, dict[str, Any]]]:
    return [(int(a), d) for a, d in sql(url, "SELECT attempt, data FROM factory_job_events WHERE job_id = %s "
                                             "ORDER BY seq", job)]


@pytest.mark.vm
def test_a_retried_job_resumes_from_the_checkpoint_its_host_kept(
        workers: Workers, debian_guest: GuestImage, tmp_path: Path) -> None:  # noqa: F811
    """Two workers on one host (one cache, as under one systemd unit restarted, or two units): the first is
    SIGKILLed while the second provisioner runs; the second worker retries the job, restores the checkpoint the
    first attempt stored after provisioner 1 (the guest does not boot again, provisioner 1 does not run again)
    and finishes it."""
    cache = {"FACTORY_CACHE_DIR": str(tmp_path / "host-cache")}
    first = workers.start(queues="tcg", heartbeat=2, stalled_after=15, env=cache)
    template = _resume_template(tmp_path / "tpl")
    proc = factory("submit", "--db", workers.url, "-var", f"guest_image={debian_guest.path}", str(template),
                   cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    job = int(proc.stdout.strip().splitlines()[-1])

    def second_provisioner_started() -> bool:
        return any(d.get("type") == "step-started" and d.get("step") == "provision-2" for _, d in
                   _events(workers.url, job))

    wait_for(second_provisioner_started, 1500, lambda: first.output()[-3000:])
    second = workers.start(queues="tcg", heartbeat=2, stalled_after=15, env=cache)
    os.kill(first.proc.pid, signal.SIGKILL)
    wait_for(lambda: status(workers.url, job) in ("succeeded", "failed"), 900, lambda: second.output()[-3000:])
    logs = factory("jobs", "logs", str(job), "--db", workers.url).stderr
    assert status(workers.url, job) == "succeeded", logs[-5000:] + second.output()[-3000:]

    events = _events(workers.url, job)
    finished = {(a, d["step"]): d for a, d in events if d.get("type") == "step-finished"}
    # Attempt 1 booted the guest and ran provisioner 1; attempt 2 took both from the checkpoint.
    assert not finished[(0, "connect")]["from_checkpoint"] and not finished[(0, "provision-1")]["from_checkpoint"]
    assert finished[(1, "connect")]["from_checkpoint"] and finished[(1, "provision-1")]["from_checkpoint"], logs
    assert not finished[(1, "provision-2")]["from_checkpoint"]
    p1 = [a for a, d in events if "P1-RAN-ON-" in str(d.get("message", ""))]
    assert p1 and set(p1) == {0}, p1  # provisioner 1's command ran once, in the first attempt
    assert any(a == 1 and "P2-DONE" in str(d.get("message", "")) for a, d in events)
    runs = sql(workers.url, "SELECT attempt, worker, outcome FROM factory_job_runs WHERE job_id = %s "
                            "ORDER BY attempt", job)
    assert [(r[0], r[1].endswith(f":{w.proc.pid}"), r[2]) for r, w in zip(runs, (first, second), strict=True)] \
        == [(0, True, None), (1, True, "succeeded")]
    # The killed attempt's VM died with it: no QEMU of this job is left on the host.
    assert not [p for p in Path("/proc").glob("[0-9]*") if _runs_from(p, tmp_path / "host-cache")]


def _runs_from(proc: Path, folder: Path) -> bool:
    try:
        return str(folder).encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False

"""Four builds of one template at once fetch the same ISO: one download, every copy verified, and no partial
file ever visible under the name a build would use. The four are four processes calling the cache exactly as
a parallel build's FetchMedia step does (each parallel build is its own process); the server is real HTTP on
127.0.0.1, slowed so the four overlap."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from factory.media import cache

PAYLOAD = os.urandom(2 * (1 << 20) + 777)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _serve(gets: Counter[str], ended: list[float]) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            gets[self.path] += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            for i in range(0, len(PAYLOAD), 128 << 10):  # ~3.4 s in all: the other three arrive meanwhile
                self.wfile.write(PAYLOAD[i:i + (128 << 10)])
                time.sleep(0.2)
            ended.append(time.time())

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/disk.iso"


def test_four_builds_fetching_one_file_download_it_once(tmp_path: Path) -> None:
    gets: Counter[str] = Counter()
    ended: list[float] = []
    httpd, url = _serve(gets, ended)
    final = cache.cached_path(SHA, "disk.iso")
    bad_views: list[str] = []
    stop = threading.Event()

    def watch() -> None:  # the final name must only ever show the whole, verified file
        while not stop.is_set():
            try:
                data = final.read_bytes()
            except OSError:
                continue
            if hashlib.sha256(data).hexdigest() != SHA:
                bad_views.append(f"{len(data)} bytes")

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    code = ("import time; from factory.media import cache; t = time.time(); "
            f"print(t, cache.fetch([{url!r}], 'sha256:{SHA}'))")
    try:
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(4)]
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        stop.set()
        watcher.join()
        httpd.shutdown()
        httpd.server_close()
    assert all(p.returncode == 0 for p in procs), [o[1].decode() for o in outs]
    results = [o[0].decode().split() for o in outs]
    assert {path for _, path in results} == {str(final)}
    assert gets["/disk.iso"] == 1
    overlapped = [float(t) for t, _ in results if float(t) < ended[0]]
    assert len(overlapped) >= 2, "the fetches did not overlap: the test proved nothing"
    assert bad_views == []
    assert hashlib.sha256(final.read_bytes()).hexdigest() == SHA
    leftovers = [p for p in Path(os.environ["FACTORY_CACHE_DIR"]).rglob("*") if p.name.endswith(".part")]
    assert leftovers == []

"""A server of the ops stack run as a real process for a test (Prometheus, the
blackbox exporter): its output kept in a log file, ready when its health URL
answers 200, stopped with SIGTERM (SIGKILL after 10 s)."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path


class ServerProcess:
    name = "server"

    def __init__(self, argv: list[str], *, workdir: Path, health_url: str):
        self.health_url = health_url
        self.log = open(workdir / f"{self.name}.log", "w+b")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise AssertionError(f"{self.name} exited: {self.log.read().decode()[-3000:]}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

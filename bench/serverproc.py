"""Server processes for the benchmark: start, wait for `/healthz`, watch memory and CPU, stop.

Memory is the resident set of the whole process tree (the server and any workers it forks),
polled from `/proc/<pid>/status` while the load runs; the peak of the polled sum is the figure
printed. The sum of each process's own VmHWM is kept too, as an upper bound between polls.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import load

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port nobody listens on right now (bound to 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def product_command() -> list[str]:
    """The `caliper-store` console script beside this interpreter, else `python -m`."""
    script = Path(sys.executable).with_name("caliper-store")
    return [str(script)] if script.exists() else [sys.executable, "-m", "caliper_store"]


class ServerError(RuntimeError):
    """A server did not start, or died while under load."""


class ServerProcess:
    """One server subprocess with its output captured to a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, host: str, port: int):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.host = host
        self.port = port
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Poll `GET /healthz` until it answers 200; fail early if the process exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.process.returncode} before it answered"
                    f" /healthz\n{self.log_tail()}"
                )
            if self._is_healthy():
                return
            # Polling for readiness is the one place the benchmark waits on a clock.
            time.sleep(0.05)
        self.stop()
        raise ServerError(
            f"{self.name} did not answer /healthz in {timeout_s} s\n{self.log_tail()}"
        )

    def _is_healthy(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self, timeout_s: float = 60.0) -> int:
        """Send SIGTERM, wait for the exit (SIGKILL after `timeout_s`); return the exit code.

        uvicorn re-raises the signal after its graceful shutdown, so a clean stop shows as
        `-SIGTERM` (see `is_clean_exit`).
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"    | {line}" for line in text)


def is_clean_exit(code: int) -> bool:
    """0, or death by the SIGTERM we sent (uvicorn re-raises it once it has shut down)."""
    return code in (0, -signal.SIGTERM)


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants."""
    found = [pid]
    index = 0
    while index < len(found):
        for task in _list_dir(f"/proc/{found[index]}/task"):
            try:
                children = Path(f"/proc/{found[index]}/task/{task}/children").read_text()
            except OSError:
                continue
            found.extend(int(child) for child in children.split())
        index += 1
    return found


def _list_dir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, then utime, stime, cutime, cstime are 14 to 17
    # (proc(5)); cutime/cstime hold the children this process has already reaped.
    return sum(int(value) for value in fields[11:15]) / _CLOCK_TICKS


def machine_busy_s() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat: all but idle and iowait)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    return (sum(fields[:8]) - fields[3] - fields[4]) / _CLOCK_TICKS


@dataclass
class TreeUsage:
    """Memory and CPU of one server's process tree during a load run, and the machine's CPU."""

    peak_rss_kib: int = 0
    hwm_sum_kib: int = 0
    processes: int = 0
    window_cpu_s: float = 0.0
    window_machine_busy_s: float = 0.0


class TreeMonitor:
    """A load observer sampling a process tree: peak RSS on every tick, CPU over the window."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.usage = TreeUsage()
        self._cpu_start = 0.0
        self._machine_start = 0.0

    def _cpu_now(self) -> float:
        return sum(_cpu_s(pid) for pid in process_tree(self.pid))

    def on_window_start(self) -> None:
        self._cpu_start = self._cpu_now()
        self._machine_start = machine_busy_s()

    def on_window_end(self) -> None:
        self.usage.window_cpu_s = max(0.0, self._cpu_now() - self._cpu_start)
        self.usage.window_machine_busy_s = machine_busy_s() - self._machine_start

    def on_tick(self) -> None:
        pids = process_tree(self.pid)
        rss = sum(_status_kib(pid, "VmRSS:") for pid in pids)
        usage = self.usage
        usage.peak_rss_kib = max(usage.peak_rss_kib, rss)
        usage.hwm_sum_kib = max(usage.hwm_sum_kib, sum(_status_kib(pid, "VmHWM:") for pid in pids))
        usage.processes = max(usage.processes, len(pids))


@dataclass
class DriveOutcome:
    """A load run against one server process, and how that process fared."""

    result: load.LoadResult
    usage: TreeUsage
    exit_code: int
    has_died_under_load: bool


def drive(
    server: ServerProcess, config: load.LoadConfig, factory: load.RequestFactory
) -> DriveOutcome:
    """Wait for `server`, run the load against it while watching it, then SIGTERM it."""
    try:
        server.wait_ready()
        monitor = TreeMonitor(server.pid)
        monitor.on_tick()
        result = load.run_load(config, factory, monitor)
        monitor.on_tick()
    except BaseException:
        server.stop()
        raise
    has_died = server.process.poll() is not None
    return DriveOutcome(result, monitor.usage, server.stop(), has_died)

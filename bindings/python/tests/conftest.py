"""Fixtures: a live 3-node dev cluster (`ringraftd dev`) for the whole session, and the
libringraft built next to it.

The binaries come from the repository's cargo target directory ($CARGO_TARGET_DIR, else
<repo>/target), debug profile. Missing binaries fail the session loudly: these tests never skip
because something was not built.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Dict, Iterator, List, Optional, TypeVar

import pytest

import ringraft

REPO = Path(__file__).resolve().parents[3]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug"
DAEMON = TARGET / "ringraftd"
LIBRARY = TARGET / "libringraft.so"
NODES = 3

#: Generous bounds for a loaded 2-core machine; they end waits that would otherwise hang, they
#: are not performance assertions.
READY_DEADLINE_S = 120.0
STOP_DEADLINE_S = 40.0
CONDITION_DEADLINE_S = 30.0

# The package loads the library on first use, so this is in place before any test imports it.
os.environ.setdefault("RINGRAFT_LIB", str(LIBRARY))

T = TypeVar("T")


def wait_for(
    condition: Callable[[], Optional[T]],
    what: str,
    deadline_s: float = CONDITION_DEADLINE_S,
    poll_s: float = 0.02,
) -> T:
    """Polls `condition` until it returns something truthy, and returns that; fails the test
    with `what` at the deadline. Exceptions from `condition` count as "not yet" and the last one
    is reported."""
    deadline = time.monotonic() + deadline_s
    last_error: Optional[BaseException] = None
    while True:
        try:
            result = condition()
            if result:
                return result
        except Exception as error:  # noqa: BLE001 (reported below)
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            pytest.fail(f"timed out after {deadline_s}s waiting for {what}{detail}")
        time.sleep(poll_s)


@dataclass
class DevCluster:
    directory: Path
    nodes: int
    sockets: Dict[int, str]
    process: "subprocess.Popen[str]"

    def socket(self, node_id: int) -> str:
        return self.sockets[node_id]

    def node_log_tail(self, lines: int = 30) -> str:
        parts = []
        for node_id in range(1, self.nodes + 1):
            log = self.directory / f"n{node_id}" / "ringraftd.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {log} ---\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM to the launcher, which stops its nodes; idempotent. Fails the test if the
        launcher or a node does not stop (and then kills them)."""
        pids = []
        for node_id in range(1, self.nodes + 1):
            try:
                pid_file = self.directory / f"n{node_id}" / "ringraftd.pid"
                pids.append(int(pid_file.read_text().strip()))
            except (OSError, ValueError):
                pass
        problems = []
        already_stopped = self.process.returncode is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=STOP_DEADLINE_S)
            if code != 0 and not already_stopped:
                problems.append(f"ringraftd dev exited with {code}")
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            problems.append(f"ringraftd dev did not stop within {STOP_DEADLINE_S}s of SIGTERM")
        # The launcher stops its nodes before it exits; check that it did.
        for pid in pids:
            if _process_alive(pid):
                os.kill(pid, signal.SIGKILL)
                problems.append(f"node pid {pid} outlived the launcher")
        if problems:
            pytest.fail("; ".join(problems) + "\n" + self.node_log_tail(), pytrace=False)


def _require_built() -> None:
    missing = [str(path) for path in (DAEMON, LIBRARY) if not path.exists()]
    if missing:
        pytest.fail(
            "the Python tests need the daemon and libringraft built first; missing: "
            + ", ".join(missing)
            + f"\nbuild them with: cargo build -p ringraft-ffi -p ringraft-daemon "
            f"(target directory {TARGET.parent})",
            pytrace=False,
        )


@pytest.fixture(scope="session", autouse=True)
def built() -> None:
    """Every test needs the library; a missing build is an error, never a skip."""
    _require_built()
    if Path(os.environ["RINGRAFT_LIB"]).resolve() != LIBRARY.resolve():
        sys.stderr.write(f"note: RINGRAFT_LIB={os.environ['RINGRAFT_LIB']} (not {LIBRARY})\n")


# Loaded here, not in the child: between fork and exec only async-signal-safe work is wise.
_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _parent_death_signal() -> None:
    # If pytest dies without tearing down, the kernel stops the launcher (which stops its nodes
    # the same way), so no cluster outlives the test run.
    _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _read_lines(stream: IO[str], lines: "queue.Queue[Optional[str]]") -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


@contextmanager
def dev_cluster(directory: Path, nodes: int) -> Iterator[DevCluster]:
    """`ringraftd dev --nodes N --dir DIR`, ready (a leader elected, sockets printed) on entry,
    stopped with SIGTERM on exit; a launcher that does not stop cleanly fails the test."""
    stderr_path = directory / "dev.stderr"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [str(DAEMON), "dev", "--nodes", str(nodes), "--dir", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=_parent_death_signal,
        )
    lines: "queue.Queue[Optional[str]]" = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    dev = DevCluster(directory=directory, nodes=nodes, sockets={}, process=process)
    try:
        _wait_ready(dev, lines, stderr_path)
        yield dev
    finally:
        dev.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, built: None) -> Iterator[DevCluster]:
    with dev_cluster(tmp_path_factory.mktemp("cluster"), NODES) as dev:
        yield dev


def _wait_ready(dev: DevCluster, lines: "queue.Queue[Optional[str]]", stderr_path: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    ready = False
    seen: List[str] = []
    while len(dev.sockets) < dev.nodes:
        remaining = deadline - time.monotonic()
        line = None
        if remaining > 0:
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                line = None
        if line is None:
            pytest.fail(
                f"ringraftd dev did not report {dev.nodes} ready nodes within "
                f"{READY_DEADLINE_S}s (exit code {dev.process.poll()}); stdout so far: {seen}\n"
                f"stderr: {stderr_path.read_text(errors='replace')[-2000:]}\n"
                + dev.node_log_tail(),
                pytrace=False,
            )
        seen.append(line)
        if not ready:
            ready = line.startswith("ringraft dev cluster ready")
            continue
        name, _, socket = line.partition(" ")
        if name.startswith("n") and name[1:].isdigit() and socket:
            dev.sockets[int(name[1:])] = socket
    assert sorted(dev.sockets) == list(range(1, dev.nodes + 1)), dev.sockets


@pytest.fixture
def clients(cluster: DevCluster) -> Iterator[Dict[int, ringraft.Client]]:
    """One open client per node, by node id, closed after the test."""
    opened = {
        node_id: ringraft.Client(path, timeout=10) for node_id, path in cluster.sockets.items()
    }
    try:
        yield opened
    finally:
        for client in opened.values():
            client.close()


@pytest.fixture
def client(clients: Dict[int, ringraft.Client]) -> ringraft.Client:
    return clients[1]

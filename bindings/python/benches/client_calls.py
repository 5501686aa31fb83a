"""Per-call cost of the Python client against a running ringraftd; prints numbers, asserts
nothing.

    target/release/ringraftd dev --nodes 3 --dir /tmp/rr &       # note the n1 socket it prints
    RINGRAFT_LIB=target/release/libringraft.so PYTHONPATH=bindings/python \\
        python3 bindings/python/benches/client_calls.py /tmp/rr/n1/ringraftd.sock
"""

from __future__ import annotations

import sys
import time
from typing import Callable

import ringraft


def measure(label: str, call: Callable[[int], object], count: int) -> None:
    start = time.perf_counter()
    for i in range(count):
        call(i)
    elapsed = time.perf_counter() - start
    print(f"{label:36s} {count / elapsed:10.0f} calls/s {elapsed / count * 1e6:9.1f} us/call")


def main(socket_path: str) -> None:
    keys = [b"key-%d" % i for i in range(1000)]
    print(f"libringraft {ringraft.library_version()} from {ringraft.library_path()}")
    with ringraft.Client(socket_path) as client:
        measure("owner (daemon round trip)", lambda i: client.owner(keys[i % 1000]), 5000)
        ring = client.ring()
        measure("Ring.owner (in-process view)", lambda i: ring.owner(keys[i % 1000]), 50000)
        client.enable_ring_cache(1.0)
        measure("owner with the ring cache", lambda i: client.owner(keys[i % 1000]), 50000)
        client.disable_ring_cache()
        measure(
            "replicas n=3 (daemon round trip)", lambda i: client.replicas(keys[i % 1000], 3), 5000
        )
        measure("status", lambda i: client.status(), 5000)
        measure("propose 100 B, one at a time", lambda i: client.propose(b"x" * 100), 500)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])

"""The values the client returns: immutable dataclasses, and the enums they use."""

from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Dict, Iterator, Optional, Tuple, Type, TypeVar, Union, overload

from . import _lib

if TYPE_CHECKING:
    from ._ring import RingView

#: What a key may be: bytes as they are, str encoded as UTF-8.
Key = Union[bytes, bytearray, memoryview, str]


class NodeRole(enum.IntEnum):
    """The Raft role of the node a client is connected to (`ringraft_node_role`)."""

    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2
    LEARNER = 3


class MemberRole(enum.IntEnum):
    """Whether a member votes in Raft or only follows the log (`ringraft_member_role`)."""

    VOTER = 0
    LEARNER = 1


class MemberState(enum.IntEnum):
    """A member's state (`ringraft_member_state`); only active members own keys."""

    ACTIVE = 0
    DRAINING = 1
    DOWN = 2


_E = TypeVar("_E", bound=enum.IntEnum)


def _enum_or_int(cls: Type[_E], value: int) -> Union[_E, int]:
    # A newer library may report a value these bindings do not know yet: keep the number.
    try:
        return cls(value)
    except ValueError:
        return value


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@dataclass(frozen=True)
class Node:
    """One cluster member."""

    id: int
    name: str
    #: The member's peer (QUIC) address, an IP literal and port (`10.0.0.11:7400`); the
    #: daemon takes no host names.
    address: str
    #: Its failure zone; "" when zones are not used.
    zone: str
    #: Relative share of the ring (tokens = vnodes x weight).
    weight: int
    role: Union[MemberRole, int]
    state: Union[MemberState, int]
    #: A string field was longer than the C library's array and was cut.
    truncated: bool = False

    @classmethod
    def _from_c(cls, node: _lib.RingraftNode) -> "Node":
        # Answers name one of a few members over and over, and the header promises that equal
        # members are equal bytes: reuse the Node already built for these bytes.
        raw = bytes(node)
        cached = _NODES_BY_BYTES.get(raw)
        if cached is not None:
            return cached
        built = cls(
            id=node.id,
            name=_text(node.name),
            address=_text(node.address),
            zone=_text(node.zone),
            weight=node.weight,
            role=_enum_or_int(MemberRole, node.role),
            state=_enum_or_int(MemberState, node.state),
            truncated=bool(node.flags & _lib.NODE_TRUNCATED),
        )
        if len(_NODES_BY_BYTES) >= _NODES_BY_BYTES_MAX:
            _NODES_BY_BYTES.clear()
        _NODES_BY_BYTES[raw] = built
        return built


#: Node values by their C bytes (bounded; dict operations are atomic under the GIL).
_NODES_BY_BYTES: Dict[bytes, Node] = {}
_NODES_BY_BYTES_MAX = 4096


#: A cluster member is a Node; both names are used.
Member = Node


@dataclass(frozen=True)
class ClusterStatus:
    """What a node reports about itself (`ringraft_cluster_info`)."""

    node_id: int
    name: str
    #: The id as a number; `cluster_id_hex` (and the repr) show it the way ringraftctl and the
    #: daemon's logs do.
    cluster_id: int
    role: Union[NodeRole, int]
    term: int
    #: None when no leader is known.
    leader_id: Optional[int]
    commit_index: int
    applied_index: int
    last_index: int
    snapshot_index: int
    #: Raft index of the last membership change: the ring's epoch.
    epoch: int
    member_count: int
    daemon_version: str

    @property
    def is_leader(self) -> bool:
        return self.role == NodeRole.LEADER

    @property
    def cluster_id_hex(self) -> str:
        """The cluster id as people see it everywhere: 16 lowercase hex digits, zero-padded."""
        return format(self.cluster_id, "016x")

    def __repr__(self) -> str:
        # The generated repr would print the id in decimal, a form found nowhere else.
        def shown(name: str) -> str:
            return self.cluster_id_hex if name == "cluster_id" else repr(getattr(self, name))

        return f"ClusterStatus({', '.join(f'{f.name}={shown(f.name)}' for f in fields(self))})"

    @classmethod
    def _from_c(cls, info: _lib.RingraftClusterInfo) -> "ClusterStatus":
        return cls(
            node_id=info.node_id,
            name=_text(info.name),
            cluster_id=info.cluster_id,
            role=_enum_or_int(NodeRole, info.role),
            term=info.term,
            leader_id=info.leader_id or None,
            commit_index=info.commit_index,
            applied_index=info.applied_index,
            last_index=info.last_index,
            snapshot_index=info.snapshot_index,
            epoch=info.epoch,
            member_count=info.member_count,
            daemon_version=_text(info.daemon_version),
        )


@dataclass(frozen=True)
class LogRecord:
    """One committed proposal: its Raft index (its place in the cluster's one order) and bytes."""

    index: int
    data: bytes


@dataclass(frozen=True)
class LogBatch:
    """Records read from the log, in index order, with the range the node keeps.

    Behaves as a sequence of `LogRecord`.
    """

    records: Tuple[LogRecord, ...]
    #: The lowest index the node still keeps (older records were compacted away).
    first_index: int
    #: The highest committed index applied on the node when it answered.
    last_index: int

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[LogRecord]:
        return iter(self.records)

    @overload
    def __getitem__(self, item: int) -> LogRecord: ...

    @overload
    def __getitem__(self, item: slice) -> Tuple[LogRecord, ...]: ...

    def __getitem__(self, item: Union[int, slice]) -> Union[LogRecord, Tuple[LogRecord, ...]]:
        return self.records[item]


@dataclass(frozen=True)
class Members:
    """All members (active, draining and down) and the ring epoch of the answer.

    Behaves as a sequence of `Node`.
    """

    nodes: Tuple[Node, ...]
    epoch: int

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    @overload
    def __getitem__(self, item: int) -> Node: ...

    @overload
    def __getitem__(self, item: slice) -> Tuple[Node, ...]: ...

    def __getitem__(self, item: Union[int, slice]) -> Union[Node, Tuple[Node, ...]]:
        return self.nodes[item]

    def by_id(self, node_id: int) -> Optional[Node]:
        return next((node for node in self.nodes if node.id == node_id), None)


@dataclass(frozen=True)
class Ring:
    """The cluster's ring at one epoch, able to answer owner and replicas in this process.

    `encoded` is the ring in the ringraft-ring encoding (docs/ring.md), for programs that compute
    owners themselves.
    """

    epoch: int
    replication_factor: int
    members: Tuple[Node, ...]
    encoded: bytes
    _view: Optional["RingView"] = field(default=None, repr=False, compare=False, hash=False)

    def owner(self, key: Key) -> Node:
        """The owner of `key` in this ring; no round trip."""
        return self._require_view().owner(key)

    def replicas(self, key: Key, n: Optional[int] = None) -> Tuple[Node, ...]:
        """The `n` (default: the replication factor) nodes holding `key`, owner first."""
        return self._require_view().replicas(key, self.replication_factor if n is None else n)

    def _require_view(self) -> "RingView":
        if self._view is None:
            raise ValueError("this Ring was built by hand; only Client.ring() answers lookups")
        return self._view


@dataclass(frozen=True)
class KvEntry:
    """A register as `Client.kv_get()` found it: its value, its version (the number of writes
    since it was last absent, so at least 1) and the ring epoch the answer was made under."""

    value: bytes
    version: int
    epoch: int


def kv_entry_from_c(entry: _lib.RingraftKvEntry) -> KvEntry:
    """Copies a `ringraft_kv_entry` out of the library's memory (the caller frees it)."""
    value = ctypes.string_at(entry.value, entry.value_len) if entry.value_len else b""
    return KvEntry(value=value, version=entry.version, epoch=entry.epoch)


def batch_from_c(batch: _lib.RingraftLogBatch) -> LogBatch:
    """Copies a `ringraft_log_batch` out of the library's memory (the caller frees it)."""
    records = []
    for i in range(batch.count):
        record = batch.records[i]
        data = ctypes.string_at(record.data, record.len) if record.len else b""
        records.append(LogRecord(index=record.index, data=data))
    return LogBatch(
        records=tuple(records), first_index=batch.first_index, last_index=batch.last_index
    )

"""One frozen dataclass per wire op: the catalogue, gathered from where each group of ops is
written. No I/O.

Each class says its ``op`` and who sends it; its annotations are its wire fields (the spec's
``schema/messages.json`` lists the same, and a test holds the two together). Fields whose
default is ``None`` are optional and left out of the wire map when unset. What the classes are
made of is ``message_base``; how a batch of them is framed is ``batches``; both are named here
too, as the catalogue is where callers look for them. The groups are imported in the order
the spec lists their ops (an op's place in ``OPS`` is its place in the schema).
"""
from __future__ import annotations

from typing import Any

from .batches import decode_batch, encode_batch, encode_batches
from .message_base import OPS, Message, downgrade, message, record
from .wiretypes import field_specs
from .wire_records import (Environment, PluginSpec, TaskSpec, Transfer, UploadedFile)
from .client_ops import (REPLICATE_STATUSES, TASK_GATES, WORKER_QUERIES, AdaptiveTarget,
                         AdaptiveTargetReply, Authenticate, Authenticated, Cancel, ClusterInfo,
                         ClusterInfoReply, DatasetReply, Error, FireAndForget, GetDataset,
                         GetTaskSpec, Hello, KeyCancelled, KeyInMemory, KeyLost, KeyRecomputing,
                         ListDatasets, PublishDataset, Rebalance, RebalanceReply, RegisterPlugin,
                         RegisterPluginReply, Release, Replicate, ReplicateReply, Restart,
                         RestartReply, RestartWorkers, RestartWorkersReply, RetireWorkers,
                         RetireWorkersReply, Retry, ScatterDone,
                         ScatterPlan, ScatterPlanReply, Session, SessionReply, Story, StoryReply,
                         Submit, TaskSpecReply, TaskStream, TaskStreamReply, UnpublishDataset,
                         UnregisterPlugin, UnregisterPluginReply, UploadFile, UploadFileReply,
                         WantKeys, Welcome, WhoHas, WhoHasReply, WorkerAdded, WorkerList,
                         WorkerQuery, WorkerQueryReply, WorkerRemoved, WorkerStatus)
from .worker_ops import (AcquireReplicas, CloseWorker, ComputeTask, Data, DataStored, FreeKeys,
                         GetData, Heartbeat, KeysAdded, MissingData, PutData, RegisterWorker,
                         RestartWorker, RestartingForMemory, StealReply, StealRequest, TaskErred,
                         TaskFinished, TaskSeceded, Unregister, WorkerAlive, WorkerRegistered,
                         WorkerTerminated)
from .feature_ops import (PRIMITIVE_KINDS, ActorCall, ActorResult, Coordinate, CoordinateReply,
                          Published)


# Where the catalogue's records are written: their methods, generated ahead of time, are all
# in ``generated_messages`` (``python -m dist_protocol.records_source dist_protocol.messages``).
RECORD_PARTS = ("dist_protocol.wire_records", "dist_protocol.client_ops",
                "dist_protocol.worker_ops", "dist_protocol.feature_ops")


def describe_ops() -> dict[str, dict[Any, Any]]:
    """The catalogue as data, in the shape of spec/schema/messages.json."""
    return {
        op: {
            "direction": list(cls.direction),
            "since": cls.since,
            **({"feature": cls.feature} if cls.feature else {}),
            "fields": {f.name: f.describe() for f in cls.fields},
        }
        for op, cls in OPS.items()
    }


RECORDS: dict[str, type] = {"TaskSpec": TaskSpec, "Environment": Environment,
                            "UploadedFile": UploadedFile, "PluginSpec": PluginSpec,
                            "Transfer": Transfer}


def describe_records() -> dict[str, dict[Any, Any]]:
    return {name: {f.name: f.describe() for f in field_specs(cls)}
            for name, cls in RECORDS.items()}


__all__ = ["AcquireReplicas", "ActorCall", "ActorResult", "AdaptiveTarget", "AdaptiveTargetReply",
           "Authenticate", "Authenticated", "Cancel", "CloseWorker", "ClusterInfo",
           "ClusterInfoReply", "ComputeTask", "Coordinate", "CoordinateReply", "Data",
           "DataStored", "DatasetReply", "Environment", "Error", "FireAndForget", "FreeKeys",
           "GetData", "GetDataset", "GetTaskSpec", "Heartbeat", "Hello", "KeyCancelled",
           "KeyInMemory", "KeyLost", "KeyRecomputing", "KeysAdded", "ListDatasets", "Message",
           "MissingData", "OPS", "PRIMITIVE_KINDS", "PluginSpec", "PublishDataset", "Published",
           "PutData", "RECORDS", "RECORD_PARTS", "REPLICATE_STATUSES", "Rebalance",
           "RebalanceReply", "RegisterPlugin", "RegisterPluginReply", "RegisterWorker", "Release",
           "Replicate", "ReplicateReply", "Restart", "RestartReply", "RestartWorker",
           "RestartWorkers", "RestartWorkersReply",
           "RestartingForMemory", "RetireWorkers", "RetireWorkersReply", "Retry", "ScatterDone",
           "ScatterPlan", "ScatterPlanReply", "Session", "SessionReply", "StealReply",
           "StealRequest", "Story", "StoryReply", "Submit", "TASK_GATES", "TaskErred",
           "TaskFinished", "TaskSeceded", "TaskSpec", "TaskSpecReply", "TaskStream",
           "TaskStreamReply", "Transfer", "UnpublishDataset", "Unregister", "UnregisterPlugin",
           "UnregisterPluginReply", "UploadFile", "UploadFileReply", "UploadedFile",
           "WORKER_QUERIES", "WantKeys", "Welcome", "WhoHas", "WhoHasReply", "WorkerAdded",
           "WorkerAlive", "WorkerList", "WorkerQuery", "WorkerQueryReply", "WorkerRegistered",
           "WorkerRemoved", "WorkerStatus", "WorkerTerminated", "decode_batch", "describe_ops",
           "describe_records", "downgrade", "encode_batch", "encode_batches", "message", "record"]

"""dask's restart_workers at the center, as transcripts: the workers named are told to
restart, and the client is answered once a worker of each one's nanny is registered again."""
from dist_center.events import WaitTimedOut, WorkerJoined
from dist_protocol.messages import (RegisterWorker, RestartWorker, RestartWorkers,
                                    RestartWorkersReply)


def join(center, address, name, nanny):
    return center(WorkerJoined(RegisterWorker(address=address, nthreads=1, name=name,
                                              nanny=nanny)))


def restart(center, *workers, request=1, timeout=30.0):
    return center.client_sent(RestartWorkers(id=request, workers=list(workers),
                                             timeout=timeout))


def test_the_workers_named_restart_and_the_client_hears_once_each_is_back(center):
    join(center, "w1", "one", "h:11")
    join(center, "w2", "two", "h:22")
    join(center, "w3", "three", "h:33")

    out = restart(center, "w1", "two")  # by address and by name

    reason = "restart_workers requested by alice"
    assert out == [("w1", RestartWorker(reason=reason)), ("w2", RestartWorker(reason=reason))]
    center.leave("w1", "restarting")
    join(center, "w1b", "one", "h:11")  # a new process, at a new address
    assert not [m for _, m in center.leave("w2", "restarting") if isinstance(
        m, RestartWorkersReply)]
    out = join(center, "w2", "two", "h:22")  # its port is fixed: the same address again
    assert ("alice", RestartWorkersReply(id=1, status={"w1": "OK", "two": "OK"})) in out
    assert center.state.worker_restarts.waits == {}


def test_a_worker_not_back_in_time_is_timed_out(center):
    join(center, "w1", "one", "h:11")
    join(center, "w2", "two", "h:22")
    restart(center, "one", "two", request=4)
    center.leave("w1", "restarting")
    join(center, "w1b", "one", "h:11")
    out = center(WaitTimedOut("alice", "restart-workers", 4))
    assert out == [("alice", RestartWorkersReply(id=4, status={"one": "OK",
                                                               "two": "timed out"}))]
    assert center(WaitTimedOut("alice", "restart-workers", 4)) == []


def test_a_worker_without_a_nanny_or_unknown_restarts_nothing(center):
    join(center, "w1", "one", "h:11")
    join(center, "w2", "two", None)
    [(to, reply)] = restart(center, "w1", "two")
    assert to == "alice" and reply.status == {}
    assert "requires a nanny" in reply.error and "two" in reply.error
    [(to, reply)] = restart(center, "w1", "w9", request=2)
    assert "no worker 'w9'" in reply.error
    assert center.state.worker_restarts.waits == {}


def test_a_client_that_leaves_drops_its_wait(center):
    center.connect("bob")
    join(center, "w1", "one", "h:11")
    center.client_sent(RestartWorkers(id=3, workers=["w1"]), "bob")
    center.disconnect("bob")
    center.leave("w1", "restarting")
    assert not [m for _, m in join(center, "w1b", "one", "h:11")
                if isinstance(m, RestartWorkersReply)]

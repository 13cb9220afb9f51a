"""dask's forward_logging between real processes: what tasks log on the workers is handled
again in the client's process by the logger of the same name, until unforward_logging."""
from __future__ import annotations

import logging
import queue

import pytest

pytestmark = pytest.mark.timeout(120)

RESULT_TIMEOUT = 60


class Caught(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: queue.SimpleQueue = queue.SimpleQueue()

    def emit(self, record):
        self.records.put(record)


@pytest.fixture
def caught():
    handler = Caught()
    logger = logging.getLogger("user.module")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def log_in_task(level, text, *args):
    logging.getLogger("user.module.part").log(level, text, *args)
    return True


def fail_and_log():
    try:
        {}["missing"]
    except KeyError:
        logging.getLogger("user.module").exception("it broke")
    return True


def test_records_logged_in_tasks_are_handled_here_by_the_same_logger(cluster, caught):
    e = cluster.executor()
    assert set(e.forward_logging("user.module", level="WARNING").values()) == {"OK"}

    assert e.submit(log_in_task, logging.WARNING, "hot: %d degrees", 120).result(RESULT_TIMEOUT)
    record = caught.get(timeout=30)
    assert (record.name, record.levelno, record.getMessage()) == (
        "user.module.part", logging.WARNING, "hot: 120 degrees")
    assert record.worker in {w.address for w in cluster.workers}

    e.submit(log_in_task, logging.INFO, "below the level forwarded").result(RESULT_TIMEOUT)
    assert e.submit(fail_and_log).result(RESULT_TIMEOUT)
    record = caught.get(timeout=30)  # (the info record was not forwarded: this comes next)
    assert record.getMessage() == "it broke" and "KeyError: 'missing'" in record.exc_text

    e.unforward_logging("user.module")
    e.submit(log_in_task, logging.ERROR, "not forwarded", pure=False).result(RESULT_TIMEOUT)
    topic = "forward-logging-forward-logging-user.module"
    assert [msg["msg"] for _, msg in e.get_events(topic)] == ["hot: 120 degrees", "it broke"]
    assert caught.empty()


def test_forwarding_the_root_reaches_every_logger_and_twice_is_once(cluster, caught):
    e = cluster.executor()
    e.forward_logging()
    e.forward_logging()  # the plugin replaced: a record still comes once
    e.submit(log_in_task, logging.WARNING, "from the root", pure=False).result(RESULT_TIMEOUT)
    assert caught.get(timeout=30).getMessage() == "from the root"
    e.unforward_logging()
    assert [msg["msg"] for _, msg in e.get_events(
        "forward-logging-forward-logging-<root>")] == ["from the root"]
    assert caught.empty()
    with pytest.raises(ValueError, match="forward-logging-never.forwarded"):
        e.unforward_logging("never.forwarded")

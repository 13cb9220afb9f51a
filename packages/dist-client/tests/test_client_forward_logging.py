"""forward_logging's pieces without a cluster: a record as an event carries it, and back."""
import logging

import pytest
from dist_client.forward_logging import ForwardingHandler, level_number, re_emit
from dist_protocol.serialize import deserialize, serialize


class Worker:
    address = "10.0.0.5:40211"

    def __init__(self):
        self.events = []

    def log_event(self, topic, msg):
        self.events.append((topic, msg))


def test_a_record_travels_as_msgpack_and_is_handled_again_by_its_logger(caplog):
    handler = ForwardingHandler(Worker(), "t")
    try:
        raise KeyError("k")
    except KeyError:
        record = logging.getLogger("a.b").makeRecord(
            "a.b", logging.ERROR, "f.py", 3, "%s and %r", ("text", object), None,
            extra={"custom": object()})
        record.exc_info = __import__("sys").exc_info()
    attributes = handler.attributes(record)
    assert deserialize(serialize(attributes, ("msgpack",))) == attributes  # plain data only
    assert attributes["msg"] == "text and <class 'object'>" and attributes["args"] is None
    assert "KeyError: 'k'" in attributes["exc_text"]
    assert attributes["worker"] == Worker.address

    with caplog.at_level(logging.ERROR, logger="a.b"):
        re_emit((0.0, attributes))
        re_emit((0.0, "not a record"))
    [got] = caplog.records
    assert (got.name, got.levelno, got.getMessage()) == ("a.b", logging.ERROR,
                                                         "text and <class 'object'>")


def test_only_records_of_tasks_are_forwarded():
    worker = Worker()
    handler = ForwardingHandler(worker, "t")
    handler.emit(logging.makeLogRecord({"name": "x", "msg": "outside a task"}))
    assert worker.events == []


def test_a_level_is_a_number_or_a_name():
    assert level_number("info") == logging.INFO and level_number(5) == 5
    with pytest.raises(ValueError, match="unknown logging level"):
        level_number("LOUD")
    with pytest.raises(TypeError):
        level_number(2.5)

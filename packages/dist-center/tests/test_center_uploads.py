"""Files uploaded for every worker: kept (bounded, replaced by name), handed to each worker
as it registers, kept across a restart and in the durable state."""
from dist_center.snapshot import state_events
from dist_center.state import CenterState
from dist_center.uploads import Uploads
from dist_protocol.messages import (Restart, UploadedFile, UploadFile, UploadFileReply,
                                    WorkerRegistered)
from dist_protocol.serialize import Payload


def upload(name, content=b"X = 1\n", load=True, serializer="bytes"):
    return UploadedFile(name=name, content=Payload(serializer, [content]), load=load)


def registered(out, address):
    return [msg for to, msg in out if to == address and isinstance(msg, WorkerRegistered)]


def test_a_worker_registering_gets_every_file_kept_in_upload_order(center):
    center.join("w1")
    assert center.client_sent(UploadFile(id=1, file=upload("a.py"))) == [
        ("alice", UploadFileReply(id=1))]
    center.client_sent(UploadFile(id=2, file=upload("b.zip", b"PK", load=False)))
    center.client_sent(UploadFile(id=3, file=upload("a.py", b"X = 2\n")))  # replaces a.py

    [reply] = registered(center.join("w2"), "w2")

    assert [(f.name, bytes(f.content.frames[0])) for f in reply.uploads] == [
        ("b.zip", b"PK"), ("a.py", b"X = 2\n")]


def test_a_restart_keeps_the_files_and_the_workers_coming_back_get_them(center):
    center.join("w1")
    center.client_sent(UploadFile(id=1, file=upload("mod.py")))
    center.client_sent(Restart(id=2))

    [reply] = registered(center.join("w1"), "w1")

    assert [f.name for f in reply.uploads] == ["mod.py"]


def test_files_that_would_pass_the_bounds_are_refused_and_change_nothing():
    uploads = Uploads(max_files=2, max_bytes=10)
    assert uploads.keep(upload("a.py", b"12345")) is None
    assert "at most 10 bytes" in uploads.keep(upload("b.py", b"123456"))
    assert uploads.keep(upload("b.py", b"12345")) is None
    assert "at most 2 uploaded files" in uploads.keep(upload("c.py", b""))
    assert uploads.keep(upload("a.py", b"1")) is None  # replacing frees the older's bytes
    assert [f.name for f in uploads.all()] == ["b.py", "a.py"] and uploads.nbytes == 6


def test_names_with_folders_and_contents_not_bytes_are_refused(center):
    for name in ("../evil.py", "a/b.py", "..", "", "c:\\x.py"):
        [(_, reply)] = center.client_sent(UploadFile(id=1, file=upload(name)))
        assert "without folders" in reply.error
    [(_, reply)] = center.client_sent(UploadFile(id=2, file=upload("m.py", serializer="pickle")))
    assert "'bytes' payload" in reply.error
    assert center.state.uploads.all() == []


def test_the_state_as_events_keeps_the_files(center):
    center.client_sent(UploadFile(id=1, file=upload("a.py")))
    center.client_sent(UploadFile(id=2, file=upload("b.py", load=False)))
    rebuilt = CenterState()
    rebuilt.handle(*state_events(center.state))
    assert rebuilt.uploads.all() == center.state.uploads.all()

"""Installing the files the center hands a registering worker: written to the upload folder,
imported when asked, left alone when held already, and a failing one logged, not raised."""
import sys
import tempfile

import pytest
from dist_protocol.messages import UploadedFile
from dist_protocol.serialize import Payload
from dist_worker import uploads

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def own_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("uploaded_"):
            del sys.modules[name]


def upload(name, text, load=True):
    return UploadedFile(name=name, content=Payload("bytes", [text.encode()]), load=load)


def test_a_module_is_written_and_imported_once(own_folder):
    counter = upload("uploaded_counter.py", "import builtins\n"
                     "builtins.uploaded_imports = getattr(builtins, 'uploaded_imports', 0) + 1\n")
    assert uploads.install_all([counter]) == ["uploaded_counter.py"]
    import builtins
    assert builtins.uploaded_imports == 1
    # Registering again with the same file: nothing written, nothing imported again.
    assert uploads.install_all([counter]) == []
    assert builtins.uploaded_imports == 1
    del builtins.uploaded_imports


def test_load_false_only_writes_and_a_changed_file_is_imported_again(own_folder):
    assert uploads.install_all([upload("uploaded_later.py", "X = 1\n", load=False)]) == [
        "uploaded_later.py"]
    assert "uploaded_later" not in sys.modules
    assert __import__("uploaded_later").X == 1
    uploads.install_all([upload("uploaded_later.py", "X = 2\n")])
    assert sys.modules["uploaded_later"].X == 2


def test_a_file_that_fails_is_logged_and_the_others_install(own_folder, caplog):
    files = [upload("uploaded_broken.py", "raise SystemExit('no')\n"),
             upload("uploaded_fine.py", "OK = True\n")]
    assert uploads.install_all(files) == ["uploaded_fine.py"]
    assert sys.modules["uploaded_fine"].OK
    assert "uploaded_broken.py did not install: SystemExit" in caplog.text

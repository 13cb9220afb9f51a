"""The package versions a process states in the handshake are the ones importlib.metadata
reports, however they are installed."""
from __future__ import annotations

import importlib.metadata
import sys

import pytest

from dist_protocol.environment import DIST_PACKAGES, WIRE_PACKAGES, local_environment


def test_installed_versions_are_importlib_metadata_s():
    packages = local_environment().packages
    for name in (*DIST_PACKAGES, *WIRE_PACKAGES):
        assert packages.get(name) == importlib.metadata.version(name), name


@pytest.mark.parametrize("entry, metadata, expected", [
    ("demo_pkg_a-2.5.dist-info", "METADATA", "2.5"),  # the version in the folder's name
    ("demo_pkg_b.egg-info", "PKG-INFO", "3.1"),  # no version in the name: read from the file
    ("demo_pkg_c-4.0-py3.11.egg-info", "PKG-INFO", "4.0"),
])
def test_versions_of_each_kind_of_installation(tmp_path, monkeypatch, entry, metadata,
                                               expected):
    project = entry.split("-")[0].split(".")[0]
    folder = tmp_path / entry
    folder.mkdir()
    (folder / metadata).write_text(f"Metadata-Version: 2.1\nName: {project}\n"
                                   f"Version: {expected}\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    name = project.replace("_", "-")
    assert importlib.metadata.version(name) == expected
    assert local_environment(extra=(name,)).packages[name] == expected


def test_a_package_that_is_not_installed_is_left_out():
    assert "no-such-dist-package" not in local_environment(
        extra=("no-such-dist-package",)).packages

"""Keys of large values: a buffer of a megabyte or more is hashed as it is, with XXH3, not
pickled (a copy of it) and hashed with MD5, which took some 2 s a GiB of a ``scatter`` or
``submit``. The keys stay deterministic: equal content, equal key, in every process."""
from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from dist_client import keys
from dist_client.keys import LARGE_BUFFER, data_key, map_keys, task_key, tokenize

pytestmark = pytest.mark.timeout(60)


def size_of(value):
    return len(value)


@pytest.fixture
def md5_inputs(monkeypatch):
    """The sizes of everything hashed with MD5, and of every pickle made for a key."""
    sizes: list[int] = []

    def counted(function, size):
        def call(data=b"", *args, **kwargs):
            result = function(data, *args, **kwargs)
            sizes.append(size(data, result))
            return result
        return call

    hashed = lambda data, _: memoryview(data).nbytes
    monkeypatch.setattr(keys, "_md5", counted(keys._md5, hashed))
    monkeypatch.setattr(keys.hashlib, "md5", counted(hashlib.md5, hashed))
    monkeypatch.setattr(keys.pickle, "dumps", counted(pickle.dumps, lambda _, made: len(made)))
    return sizes


@pytest.mark.parametrize("make", [bytes, bytearray, lambda data: np.frombuffer(data, "u1")],
                         ids=["bytes", "bytearray", "array"])
def test_a_large_value_is_hashed_neither_with_md5_nor_pickled(make, md5_inputs):
    value = make(os.urandom(4 * LARGE_BUFFER))
    data_key(value)
    task_key(size_of, (value,), {"again": value})
    map_keys(size_of, [(value,), ([value],)], {}, None, True)
    assert md5_inputs and max(md5_inputs) < LARGE_BUFFER


def test_large_values_hash_by_content():
    first = os.urandom(2 * LARGE_BUFFER)
    changed = first[:-1] + bytes([first[-1] ^ 1])
    assert data_key(first) == data_key(bytes(bytearray(first)))
    assert data_key(first) != data_key(changed)
    assert data_key(first) != data_key(bytearray(first))  # the type is part of the key
    assert tokenize(first) != tokenize(first + b"\0")
    assert task_key(size_of, (first,), {}) == task_key(size_of, (bytes(bytearray(first)),), {})
    assert task_key(size_of, (first,), {}) != task_key(size_of, (changed,), {})
    array = np.frombuffer(first, "u1")
    assert tokenize(array) == tokenize(array.copy()) != tokenize(array.reshape(2, -1))
    assert tokenize(array[::2]) == tokenize(array[::2].copy())


def test_a_large_list_of_numbers_hashes_by_content():
    numbers = list(range(LARGE_BUFFER // 4))
    assert tokenize(numbers) == tokenize(list(numbers)) != tokenize(numbers[:-1])


def test_small_values_keep_the_keys_of_earlier_releases():
    # Clients of different releases on one center share the tasks of equal calls.
    assert data_key(b"abc") == "bytes-2660cc638be5b015b91fe36bccb4e6d3"
    assert tokenize([b"abc", 1]) == "135db5e85d6f86dc5a749644b16e0838"


def test_the_key_of_a_large_value_is_the_same_in_another_process():
    script = ("import sys; from dist_client.keys import data_key; "
              "print(data_key(bytes(range(256)) * 8192))")
    value = bytes(range(256)) * 8192
    env = dict(os.environ, PYTHONHASHSEED="7")
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, env=env, timeout=50).stdout.strip()
    assert other == data_key(value)

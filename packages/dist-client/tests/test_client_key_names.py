"""``nbytes(summary=True)`` sums results by the name their keys start with, as dask's."""
import pytest
from dist_client.sizes import key_name


@pytest.mark.parametrize("key, name", [
    ("inc-79963f7e613e5e55838d2232920baed2", "inc"),
    ("('sum-aggregate-79963f7e613e5e55838d2232920baed2', 0)", "sum-aggregate"),
    ("my-data", "my-data"),  # no hash: the key is its own name
    ("x", "x"),
])
def test_key_name_leaves_the_hash_out(key, name):
    assert key_name(key) == name

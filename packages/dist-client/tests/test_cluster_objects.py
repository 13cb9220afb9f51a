"""What Executor reads of a cluster object (``Executor(cluster)``): its address, and the token
and TLS files it carries."""
import pytest
from dist_client.cluster import ClusterLike, credentials


class Carried:
    def __init__(self, **attributes):
        self.__dict__.update(attributes)

    def close(self):
        pass


def test_address_token_and_tls_files_are_read_from_the_cluster():
    cluster = Carried(address="10.0.0.1:8786", token="t0k3n",
                      security={"tls_cert": "c.pem", "tls_key": "k.pem", "tls_ca": None})
    assert isinstance(cluster, ClusterLike)
    assert credentials(cluster) == ("10.0.0.1:8786", {"token": "t0k3n", "tls_cert": "c.pem",
                                                       "tls_key": "k.pem"})


def test_a_cluster_without_token_or_security_gives_the_address_alone():
    assert credentials(Carried(address="h:1")) == ("h:1", {})


def test_an_object_without_an_address_is_refused_clearly():
    with pytest.raises(TypeError, match="cluster object with an .address"):
        credentials(Carried(name="nothing"))
    with pytest.raises(TypeError, match="got int"):
        credentials(8786)

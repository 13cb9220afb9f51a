"""Addresses as users write them, and the address a server bound everywhere advertises."""
import ipaddress

import pytest
from dist_protocol.addresses import (format_address, is_loopback_host, parse_address,
                                     reachable_host)


@pytest.mark.parametrize("text, parsed", [
    ("127.0.0.1:8787", ("tcp", "127.0.0.1", 8787)),
    ("tcp://10.0.0.5:1", ("tcp", "10.0.0.5", 1)),
    ("tls://node-1:8787", ("tls", "node-1", 8787)),
    ("[::1]:9000", ("tcp", "::1", 9000)),
    ("  example.org:80 ", ("tcp", "example.org", 80)),
])
def test_parse_address(text, parsed):
    assert parse_address(text) == parsed


@pytest.mark.parametrize("text", ["udp://a:1", "a:port", "a:70000", "a"])
def test_bad_addresses_name_themselves(text):
    with pytest.raises(ValueError, match="address|scheme"):
        parse_address(text)


def test_format_address_round_trips():
    for scheme, host, port in [("tcp", "10.1.2.3", 5), ("tls", "::1", 6), ("tcp", "h", 7)]:
        assert parse_address(format_address(host, port, scheme)) == (scheme, host, port)


def test_loopback_hosts():
    assert is_loopback_host("localhost") and is_loopback_host("127.0.0.2")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("10.0.0.1")


def test_a_named_host_is_advertised_as_it_is():
    assert reachable_host("10.9.8.7") == "10.9.8.7"
    assert reachable_host("node-1") == "node-1"


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::", ""])
def test_a_wildcard_is_never_advertised(wildcard):
    advertised = reachable_host(wildcard)
    assert advertised not in ("0.0.0.0", "::", "")
    ipaddress.ip_address(advertised)  # a literal address, connectable as it is

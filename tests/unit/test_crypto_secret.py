"""Secret: owned copy, constant-time equality, wiping, hidden repr, unhashable, unpicklable."""

from __future__ import annotations

import pickle

import pytest

from provisioner.crypto.secret import Secret, constant_time_equal


def test_owns_a_copy_and_wipes_it() -> None:
    source = bytearray(b"abcd")
    secret = Secret(memoryview(source))
    source[0] = 0
    assert secret == b"abcd"
    buffer = secret.reveal()
    secret.wipe()
    assert buffer == bytearray()
    assert len(secret) == 0


def test_context_manager_wipes_on_exit_even_on_error() -> None:
    secret = Secret(b"k" * 16)
    buffer = secret.reveal()
    with pytest.raises(RuntimeError), secret:
        raise RuntimeError("boom")
    assert buffer == bytearray()


def test_equality_repr_hash_pickle() -> None:
    assert Secret(b"ab") == Secret(b"ab")
    assert Secret(b"ab") != Secret(b"ac")
    assert Secret(b"ab") == bytearray(b"ab")
    assert Secret(b"ab") != "ab"
    assert repr(Secret(b"\x01" * 5)) == "Secret(<5 bytes>)"
    assert str(Secret(b"zz")) == "Secret(<2 bytes>)"
    with pytest.raises(TypeError):
        hash(Secret(b"a"))
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(Secret(b"a"))


def test_constant_time_equal() -> None:
    assert constant_time_equal(b"abc", bytearray(b"abc"))
    assert not constant_time_equal(b"abc", b"abd")
    assert constant_time_equal(memoryview(b"x"), b"x")

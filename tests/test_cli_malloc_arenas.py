"""The CLI limits glibc's malloc arenas, unless the operator already chose with MALLOC_ARENA_MAX."""

import ctypes.util
import platform

import pytest

from cli.malloc_arenas import limit_malloc_arenas


def test_an_operator_setting_wins(monkeypatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(M_ARENA_MAX) is glibc's")
def test_on_glibc_the_limit_is_set(monkeypatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert ctypes.util.find_library("c")
    assert limit_malloc_arenas() is True


def test_a_limit_below_one_is_a_bug() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        limit_malloc_arenas(0)

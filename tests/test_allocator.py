"""Training keeps freed memory in the process where the C library allows it."""

import platform

import pytest

from fercnn.training.allocator import keep_freed_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_glibc_accepts_the_settings():
    assert keep_freed_memory() is True

import platform

from vidcolor.film.allocator import keep_freed_memory


def test_glibc_accepts_the_allocator_settings():
    expected = platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is expected

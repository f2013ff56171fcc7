"""Decoded frames handed from the decoder child to its parent through shared memory, not a pipe.

An isolated decoder's frames are tens of MB per row (32 frames at 588x336 are 18 MiB). Through the
pipe they were copied four times (into the socket, out of it in chunks, into a staging buffer,
into the array) with a context switch per chunk: measured, ~44 ms of the parent's CPU per 18 MiB
row, 70 % of all the work a decode actor does itself. Here the child writes them once into an
anonymous shared file (`memfd_create`: no /dev/shm mount to fill, freed when the last process
holding it exits, so a killed child or actor leaks nothing) and the parent copies them out once.

The parent owns the buffer and grows it before a request that needs more; the child maps the
same file descriptor (passed over the pipe's Unix socket) and remaps when it has grown. Where
memfd or descriptor passing is missing (not Linux), `SharedFrames.create` returns None and the
decoder keeps the pipe.
"""

from __future__ import annotations

import mmap
import os
from multiprocessing import reduction
from typing import Any

import numpy as np

_GRAIN = 1 << 20  # grow in whole MiB: a few sizes cover every row of a run


def available() -> bool:
    """memfd_create exists (Linux) and descriptors can be passed over a multiprocessing pipe."""
    return hasattr(os, "memfd_create") and getattr(reduction, "HAVE_SEND_HANDLE", False)


class SharedFrames:
    """One growable shared byte buffer, mapped by the decoder's parent and its child."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map: mmap.mmap | None = None

    @classmethod
    def create(cls) -> SharedFrames | None:
        """The parent's buffer (empty until `reserve`), or None where it is not available."""
        if not available():
            return None
        return cls(os.memfd_create("videosft-frames", os.MFD_CLOEXEC))

    @property
    def capacity(self) -> int:
        return os.fstat(self.fd).st_size

    def reserve(self, nbytes: int) -> int:
        """(Parent) make the buffer hold at least `nbytes`; returns its capacity."""
        capacity = self.capacity
        if nbytes > capacity:
            capacity = -(-nbytes // _GRAIN) * _GRAIN
            os.ftruncate(self.fd, capacity)
        return capacity

    def _view(self, nbytes: int) -> memoryview:
        """The first `nbytes` (> 0) of the buffer, remapped first if the parent has grown it."""
        size = self.capacity
        if nbytes > size:
            raise ValueError(f"{nbytes} bytes do not fit the {size}-byte frame buffer")
        if self._map is None or len(self._map) != size:
            if self._map is not None:
                self._map.close()
            self._map = mmap.mmap(self.fd, size)
        return memoryview(self._map)[:nbytes]

    def write(self, frames: np.ndarray) -> None:
        """(Child) copy C-contiguous uint8 frames into the start of the buffer."""
        view = self._view(frames.nbytes)
        view[:] = memoryview(frames).cast("B")
        view.release()

    def read(self, shape: tuple[int, ...]) -> np.ndarray:
        """(Parent) a new uint8 array of `shape` from the start of the buffer."""
        out = np.empty(shape, np.uint8)
        if out.nbytes:
            view = self._view(out.nbytes)
            memoryview(out).cast("B")[:] = view
            view.release()
        return out

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def send(conn: Any, buffer: SharedFrames, pid: int) -> None:
    """Give the child process `pid` the buffer's descriptor over `conn` (a Unix socket pipe)."""
    reduction.send_handle(conn, buffer.fd, pid)


def receive(conn: Any) -> SharedFrames:
    """(Child) the parent's buffer, received over `conn`."""
    return SharedFrames(reduction.recv_handle(conn))

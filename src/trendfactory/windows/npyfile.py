""".npy files written and read a block of rows at a time, through short-lived mappings.

A whole-file ``np.memmap`` that is filled row by row keeps every page it touched mapped: the
process' resident memory grows to the size of the file, so a window store of a large universe
costs as much memory as its feature matrix. Mapping only the rows of one block and unmapping
them afterwards leaves the written pages to the kernel's page cache (written back and reclaimed
as it likes) and holds resident memory to one block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class NpyFile:
    """A ``.npy`` file of fixed dtype and shape (C order), accessed by row blocks."""

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...], offset: int) -> None:
        self.path, self.dtype, self.shape, self.offset = Path(path), np.dtype(dtype), tuple(shape), offset
        self._row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))

    @classmethod
    def create(cls, path: Path, dtype, shape: tuple[int, ...]) -> "NpyFile":
        """A new file of zeros (sparse until written), header as ``np.save`` writes it."""
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        del mm  # only the header and the size were wanted: nothing stays mapped
        return cls.open(path)

    @classmethod
    def open(cls, path: Path) -> "NpyFile":
        with open(path, "rb") as fp:
            version = np.lib.format.read_magic(fp)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(fp)
            if fortran:
                raise ValueError(f"{path}: Fortran-ordered arrays are not supported here")
            return cls(path, dtype, shape, fp.tell())

    @property
    def rows(self) -> int:
        return self.shape[0]

    def block(self, start: int, stop: int, writable: bool = False) -> np.ndarray:
        """Rows ``start .. stop-1`` mapped (``writable``: writes go to the file). Drop the
        array (and every view of it) to unmap them."""
        shape = (stop - start, *self.shape[1:])
        if stop <= start or self._row_bytes == 0:
            return np.empty(shape, dtype=self.dtype)  # mmap cannot map zero bytes
        return np.memmap(self.path, dtype=self.dtype, mode="r+" if writable else "r", offset=self.offset + start * self._row_bytes, shape=shape)

    def read(self, start: int, stop: int) -> np.ndarray:
        """A copy of rows ``start .. stop-1`` (nothing stays mapped)."""
        mapped = self.block(start, stop)
        out = np.array(mapped)
        del mapped
        return out

    def write(self, start: int, values: np.ndarray) -> None:
        """Rows ``start ..`` := ``values``."""
        mapped = self.block(start, start + len(values), writable=True)
        mapped[...] = values
        del mapped

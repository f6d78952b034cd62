"""Reading live rows of one snapshot file as a logical Arrow table.

Invariants: rows are addressed in *live* coordinates — positions among the file's rows that survive the deletion
vector and the row filter, in file order — so ``read(f, a, b)`` followed by ``read(f, b, c)`` returns each live row
once. Column mapping is resolved (physical Parquet names → logical names), partition values become constant columns,
and columns a file predates (schema evolution) come back as nulls. Only the requested row groups are decoded; the
last decoded row group is kept so consecutive reads of one file decode it once.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_opt.delta.deletion_vectors import deleted_rows, keep_mask
from pipeline_opt.delta.snapshot import DataFile, Snapshot
from pipeline_opt.loader.errors import missing_file


class FileReader:
    """Reads live row ranges of snapshot files; one instance per process (not shared across workers)."""

    def __init__(self, snapshot: Snapshot, columns: Sequence[str], filter_expr=None,
                 filter_columns: Sequence[str] = (), source=None):
        self.snapshot = snapshot
        self.columns = list(columns)
        self.filter_expr = filter_expr
        self.read_columns = list(dict.fromkeys([*self.columns, *filter_columns]))
        self._opener = source.opener()  # callable(uri, DataFile) -> pq.ParquetFile
        self._read_bytes = source.bytes_reader()  # deletion-vector files, cached per process
        self._file: Optional[tuple] = None  # (index, ParquetFile, keep mask, rg starts, rg live counts)
        self._group: Optional[tuple] = None  # ((file index, row group), live table)

    # -- files -------------------------------------------------------------------------------------------------
    def _open(self, index: int):
        if self._file is not None and self._file[0] == index:
            return self._file
        f = self.snapshot.files[index]
        try:  # the data file and its deletion vector: a VACUUM can delete either under a pinned version
            pf = self._opener(self.snapshot.file_uri(f), f)
            mask = None
            if f.dv is not None:
                mask = keep_mask(pf.metadata.num_rows, deleted_rows(f.dv, self._read_bytes, self.snapshot.uri))
        except FileNotFoundError:
            raise missing_file(self.snapshot, f.path) from None
        sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        if self.filter_expr is None:
            live = [int(mask[starts[i]:starts[i + 1]].sum()) if mask is not None else sizes[i]
                    for i in range(len(sizes))]
        else:
            live = [None] * len(sizes)  # known only after decoding (the plan's counts cover whole files)
        self._file = (index, pf, mask, starts, live)
        return self._file

    # -- row groups --------------------------------------------------------------------------------------------
    def _group_table(self, index: int, rg: int) -> pa.Table:
        if self._group is not None and self._group[0] == (index, rg):
            return self._group[1]
        _, pf, mask, starts, live = self._open(index)
        f = self.snapshot.files[index]
        table = self._decode(pf, f, rg)
        if mask is not None:
            table = table.filter(pa.array(mask[starts[rg]:starts[rg + 1]]))
        if self.filter_expr is not None:
            table = table.filter(self.filter_expr)
            live[rg] = table.num_rows
        table = table.select(self.columns)
        self._group = ((index, rg), table)
        return table

    def _decode(self, pf: pq.ParquetFile, f: DataFile, rg: int) -> pa.Table:
        """Row group ``rg`` with logical names and types, partition columns filled in."""
        snap = self.snapshot
        present = set(pf.schema_arrow.names)
        wanted = [c for c in self.read_columns if c not in snap.partition_columns]
        phys = [snap.physical[c] for c in wanted if snap.physical[c] in present]
        raw = pf.read_row_group(rg, columns=phys, use_threads=True)
        n = pf.metadata.row_group(rg).num_rows
        arrays, fields = [], []
        for c in self.read_columns:
            field = snap.schema.field(c)
            if c in snap.partition_columns:
                arr = _constant(f.partition.get(c), field.type, n)
            elif snap.physical[c] in present:
                arr = raw.column(snap.physical[c])
                if arr.type != field.type:
                    arr = arr.cast(field.type)
            else:
                arr = pa.nulls(n, field.type)
            arrays.append(arr)
            fields.append(pa.field(c, field.type))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    # -- live ranges -------------------------------------------------------------------------------------------
    def read(self, index: int, start: int, stop: int) -> pa.Table:
        """Live rows ``[start, stop)`` of file ``index``."""
        _, pf, _, _, live = self._open(index)
        pieces, offset = [], 0
        for rg in range(len(live)):
            if offset >= stop:
                break
            count = live[rg]
            if count is not None and offset + count <= start:
                offset += count
                continue
            table = self._group_table(index, rg)
            count = table.num_rows
            lo, hi = max(start - offset, 0), min(stop - offset, count)
            if hi > lo:
                pieces.append(table.slice(lo, hi - lo))
            offset += count
        if not pieces:
            return self._group_table(index, 0).slice(0, 0) if live else _empty(self.snapshot, self.columns)
        return pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0]

    def count(self, index: int) -> int:
        """Live rows of file ``index`` (decodes the filter columns when a row filter is set)."""
        _, _, _, _, live = self._open(index)
        if self.filter_expr is None:
            return int(sum(live))
        total = 0
        for rg in range(len(live)):
            if live[rg] is None:
                self._group_table(index, rg)
            total += live[rg]
        return total


def _constant(value, type_: pa.DataType, n: int) -> pa.Array:
    if value is None:
        return pa.nulls(n, type_)
    return pa.array([value], type_).take(pa.array(np.zeros(n, dtype=np.int32)))


def _empty(snapshot: Snapshot, columns: Sequence[str]) -> pa.Table:
    return pa.schema([snapshot.schema.field(c) for c in columns]).empty_table()

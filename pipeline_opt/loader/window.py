"""Reading one window: the live rows of a run of file segments, decoded in parallel, as a table plus row indexes.

Invariants: the result is ``(table, rows)`` where ``table`` holds every physical row of the window's files (logical
names, partition columns filled, missing columns null) and ``rows`` indexes exactly the window's live rows in
segment order — rows a deletion vector or the filter drops are never indexed. Small files (at most ``big_file_rows``
rows) are decoded together by one Arrow dataset scan (parallel, in C++); bigger files go row group by row group
through ``FileReader`` so a huge file is never decoded whole for a small segment. Both paths yield the same rows.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.fs as pafs

from pipeline_opt.delta.deletion_vectors import deleted_rows, keep_mask
from pipeline_opt.loader.errors import LoaderError, missing_file
from pipeline_opt.loader.reader import FileReader

_FORMAT = pds.ParquetFileFormat()
_ROW = "__pipeline_opt_row__"


class WindowReader:
    def __init__(self, snapshot, columns: Sequence[str], filter_expr, filter_columns: Sequence[str], source,
                 big_file_rows: int):
        self.snapshot, self.columns, self.filter_expr, self.source = snapshot, list(columns), filter_expr, source
        self.read_columns = list(dict.fromkeys([*self.columns, *filter_columns]))
        self.big_file_rows = big_file_rows
        self.files = FileReader(snapshot, columns, filter_expr, filter_columns, source=source)
        self._read_bytes = source.bytes_reader()
        self._locate = source.locator()

    def read(self, segments) -> tuple:
        """(table, row indexes) of the live rows of ``segments`` [(file, live start, live stop), ...]."""
        pieces: list[tuple] = []
        run: list[tuple] = []  # (segment, fragment keyword arguments) of consecutive small files
        for seg in segments:
            f = self.snapshot.files[seg[0]]
            place = self._locate(self.snapshot.uri, f) if f.num_records <= self.big_file_rows else None
            if place is None:
                if run:
                    pieces.append(self._small(run))
                    run = []
                table = self.files.read(*seg)
                pieces.append((table, None))  # every row
            else:
                run.append((seg, place))
        if run:
            pieces.append(self._small(run))
        return _concat(pieces)

    def stream(self, windows) -> Iterator[tuple]:
        """``read(w.segments)`` for each window in turn. For local tables without a file cache, all the small files
        of all ``windows`` are decoded by one continuous Arrow scan (read-ahead across window boundaries, as a
        plain Parquet scan does) instead of one scan per window."""
        local = self.source.cache is None and isinstance(self.source.filesystem_for(self.snapshot.uri),
                                                         pafs.LocalFileSystem)
        if not local or not self._physical_schema().names:  # a scan of no columns does not report row counts
            yield from (self.read(w.segments) for w in windows)
            return
        small = [seg for w in windows for seg in w.segments if self._is_small(seg)]
        places = [self._locate(self.snapshot.uri, self.snapshot.files[seg[0]]) for seg in small]
        scanner = pds.Scanner.from_dataset(
            pds.FileSystemDataset([_FORMAT.make_fragment(**p) for p in places], self._physical_schema(), _FORMAT),
            columns=self._physical_schema().names, batch_size=1 << 20, fragment_readahead=8, use_threads=True)
        batches = iter(scanner.to_batches())
        for w in windows:
            pieces, run = [], []
            for seg in w.segments:
                if self._is_small(seg):
                    run.append((seg, self._scanned(batches, seg)))
                    continue
                if run:
                    pieces.append(self._assemble(run, pa.concat_tables([t for _, t in run])))
                    run = []
                table = self.files.read(*seg)
                pieces.append((table, None))  # every row
            if run:
                pieces.append(self._assemble(run, pa.concat_tables([t for _, t in run])))
            yield _concat(pieces)

    def _scanned(self, batches, seg) -> pa.Table:
        f = self.snapshot.files[seg[0]]
        try:
            return _take_rows(batches, f.num_records)
        except FileNotFoundError as e:  # the scan reads ahead: the missing file may be a later one than ``f``
            raise missing_file(self.snapshot, _relative(self.snapshot.uri, e.filename) or f.path) from None

    def _is_small(self, seg) -> bool:
        return self.snapshot.files[seg[0]].num_records <= self.big_file_rows

    def _physical_schema(self) -> pa.Schema:
        snap = self.snapshot
        data_cols = [c for c in self.read_columns if c not in snap.partition_columns]
        return pa.schema([pa.field(snap.physical[c], snap.schema.field(c).type) for c in data_cols])

    def _small(self, run: list) -> tuple:
        schema = self._physical_schema()
        frags = [_FORMAT.make_fragment(**place) for _, place in run]
        raw = pds.FileSystemDataset(frags, schema, _FORMAT).to_table(columns=schema.names, use_threads=True)
        return self._assemble(run, raw)

    def _assemble(self, run: list, raw: pa.Table) -> tuple:
        """(logical table, live row indexes) of a run of small files whose physical rows ``raw`` holds in order."""
        snap = self.snapshot
        counts = np.array([snap.files[f].num_records for (f, _, _), _ in run], dtype=np.int64)
        if int(counts.sum()) != raw.num_rows:
            raise LoaderError(f"{snap.uri}: files hold {raw.num_rows} rows, the Delta log says {int(counts.sum())}")
        table = self._logical(raw, run, counts)
        keep = self._keep(run, counts, table)
        starts = np.concatenate([[0], np.cumsum(counts)])
        rows = [np.flatnonzero(keep[starts[i]:starts[i + 1]])[a:b] + starts[i] for i, ((_, a, b), _) in enumerate(run)]
        return table.select(self.columns), np.concatenate(rows)

    def _logical(self, raw: pa.Table, run: list, counts: np.ndarray) -> pa.Table:
        snap = self.snapshot
        owner = pa.array(np.repeat(np.arange(len(run)), counts))
        arrays, names = [], []
        for c in self.read_columns:
            if c in snap.partition_columns:
                values = pa.array([snap.files[f].partition.get(c) for (f, _, _), _ in run], snap.schema.field(c).type)
                arrays.append(values.take(owner))
            else:
                arrays.append(raw.column(snap.physical[c]))
            names.append(c)
        return pa.table(arrays, names=names)

    def _keep(self, run: list, counts: np.ndarray, table: pa.Table) -> np.ndarray:
        """Boolean mask over the run's physical rows: not deleted and (when set) passing the filter."""
        keep = np.ones(int(counts.sum()), dtype=bool)
        base = 0
        for ((f, _, _), _), n in zip(run, counts):
            dv = self.snapshot.files[f].dv
            if dv is not None:
                keep[base:base + n] = keep_mask(int(n), deleted_rows(dv, self._read_bytes, self.snapshot.uri))
            base += int(n)
        if self.filter_expr is not None:
            numbered = table.append_column(_ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
            passing = np.zeros(table.num_rows, dtype=bool)
            passing[numbered.filter(self.filter_expr).column(_ROW).to_numpy()] = True
            keep &= passing
        return keep


def _take_rows(batches, n: int) -> pa.Table:
    """The next ``n`` rows of a scan (exactly one file's rows: a scan's batches never span two files)."""
    got, parts = 0, []
    while got < n:
        batch = next(batches)
        parts.append(batch)
        got += batch.num_rows
    if got != n:
        raise LoaderError(f"a data file holds more rows than the Delta log says ({got} > {n})")
    return pa.Table.from_batches(parts)


def _concat(pieces: list) -> tuple:
    """(table, live row indexes) of pieces (table, its live rows, or None for all of them), one after another."""
    table = pieces[0][0] if len(pieces) == 1 else pa.concat_tables([t for t, _ in pieces])
    if all(idx is None for _, idx in pieces):  # the usual window of files without vectors: one range, no sums
        return table, np.arange(table.num_rows, dtype=np.int64)
    offset, rows = 0, []
    for piece, idx in pieces:
        rows.append(np.arange(offset, offset + piece.num_rows, dtype=np.int64) if idx is None else idx + offset)
        offset += piece.num_rows
    return table, np.concatenate(rows)


def _relative(root: str, filename) -> str | None:
    if not filename:
        return None
    name = str(filename)
    return name[len(root.rstrip("/")) + 1:] if name.startswith(root.rstrip("/") + "/") else name

"""Bad input fails with a PipelineOptError whose message names the offending value."""
from __future__ import annotations

import pytest

from pipeline_opt.errors import NotADeltaTableError, PipelineOptError, TableNotFoundError
from pipeline_opt.loader import DeltaDataset, DeltaLoader, LoaderError


def test_missing_path(tmp_path):
    with pytest.raises(TableNotFoundError, match="nope"):
        DeltaDataset(tmp_path / "nope")


def test_non_delta_path(non_delta_dir):
    with pytest.raises(NotADeltaTableError, match="plain"):
        DeltaDataset(non_delta_dir)


def test_unknown_column(dv_table):
    with pytest.raises(LoaderError, match="no_such_col"):
        DeltaDataset(dv_table[0], columns=["id", "no_such_col"])


@pytest.mark.parametrize("version", [99, -1, "2"])
def test_bad_version(dv_table, version):
    with pytest.raises(PipelineOptError, match=str(version)):
        DeltaDataset(dv_table[0], version=version)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"rank": 2, "world_size": 2}, {"world_size": 0},
                                    {"batch_size": 1.5}])
def test_bad_sharding_arguments(dv_table, kwargs):
    with pytest.raises(LoaderError):
        DeltaDataset(dv_table[0], **kwargs)


def test_unknown_filter_column(dv_table):
    with pytest.raises(LoaderError, match="nope"):
        DeltaDataset(dv_table[0], filter=[("nope", "=", 1)])


def test_state_dict_of_another_table(tables):
    a = DeltaLoader(DeltaDataset(tables["dv"][0], batch_size=100))
    next(iter(a))
    b = DeltaLoader(DeltaDataset(tables["overwrite"][0], batch_size=100))
    with pytest.raises(LoaderError, match="state dict is for table"):
        b.load_state_dict(a.state_dict())


def test_state_dict_with_other_settings(dv_table):
    a = DeltaLoader(DeltaDataset(dv_table[0], batch_size=100, seed=1, shuffle=True))
    b = DeltaLoader(DeltaDataset(dv_table[0], batch_size=100, seed=2, shuffle=True))
    with pytest.raises(LoaderError, match="seed"):
        b.load_state_dict(a.state_dict())


def test_not_a_state_dict(dv_table):
    with pytest.raises(LoaderError):
        DeltaLoader(DeltaDataset(dv_table[0])).load_state_dict({"hello": 1})


# -- columns, batch size and workers: one line naming the value and what is allowed (tiny delta-rs tables) ---------
def _table(path, data: dict, appends: int = 1):
    import pyarrow as pa
    from deltalake import write_deltalake

    for _ in range(appends):
        write_deltalake(str(path), pa.table(data), mode="append")
    return path


def test_map_column_is_refused_naming_what_a_batch_holds(tmp_path):
    import pyarrow as pa

    path = _table(tmp_path / "t", {"id": [1, 2], "m": pa.array([[("a", 1)], []], pa.map_(pa.string(), pa.int64()))})
    with pytest.raises(LoaderError, match=r"\['m'\].*map<string, int64>.*a batch holds integer") as e:
        DeltaDataset(path, columns=["id", "m"])
    assert "\n" not in str(e.value)


def test_binary_column_without_a_decoder_is_refused(tmp_path):
    path = _table(tmp_path / "t", {"id": [1, 2], "blob": [b"\x00\x01", b"\xff"]})
    with pytest.raises(LoaderError, match=r"\['blob'\].*binary.*no decoder.*leave them out"):
        DeltaDataset(path, columns=["blob"])
    assert DeltaDataset(path).columns == ["id"]  # the default choice skips it


@pytest.mark.parametrize("size", [-5, 0])
def test_batch_size_below_one_names_the_value(tmp_path, size):
    path = _table(tmp_path / "t", {"id": [1, 2]})
    with pytest.raises(LoaderError, match=rf"batch_size must be an integer ≥ 1 \(rows per batch\), got {size}$"):
        DeltaDataset(path, batch_size=size)


def test_more_workers_than_files_is_refused(tmp_path):
    path = _table(tmp_path / "t", {"id": [1, 2, 3]}, appends=2)  # two data files
    ds = DeltaDataset(path, batch_size=2)
    with pytest.raises(LoaderError, match=r"num_workers=3 is more than .* \(2 data file\(s\) with rows, 1 window\(s\) "
                                          r"of rows on this rank\): use num_workers ≤ 2$"):
        DeltaLoader(ds, num_workers=3)
    assert sorted(t for b in DeltaLoader(ds, num_workers=2) for t in b["id"].tolist()) == [1, 1, 2, 2, 3, 3]


def test_stream_with_too_many_workers_exits_2_with_one_line(tmp_path, capsys):
    from pipeline_opt.app.cli import main

    path = _table(tmp_path / "t", {"id": [1, 2, 3]})
    assert main(["stream", str(path), "--workers", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "num_workers=4" in err[0] and "num_workers ≤ 1" in err[0]

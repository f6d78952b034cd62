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

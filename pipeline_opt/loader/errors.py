"""The loader's user error."""
from pipeline_opt.errors import PipelineOptError


class LoaderError(PipelineOptError):
    """Bad loader input: an unknown column, a bad version, a state dict of another table, a corrupt vector."""



class MissingFileError(LoaderError):
    """A data file of the pinned version is gone from storage: something deleted what that version still needs.

    One message argument only, so that torch can re-create it when a worker process raises it.
    """


def missing_file(snapshot, path: str) -> MissingFileError:
    v = snapshot.version
    return MissingFileError(
        f"{snapshot.uri}: data file {path} of version {v} is gone from storage (a VACUUM by another engine, or one "
        f"that ignored this reader's lease, deleted it); no batch of it was delivered. Version {v} cannot be read "
        "any more: start a new epoch on the latest version (a DeltaDataset without version=); resuming this "
        "state would meet the same gap")

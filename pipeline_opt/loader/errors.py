"""The loader's user error."""
from pipeline_opt.errors import PipelineOptError


class LoaderError(PipelineOptError):
    """Bad loader input: an unknown column, a bad version, a state dict of another table, a corrupt vector."""

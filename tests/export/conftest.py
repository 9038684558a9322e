"""Export tests share the torch-free tiny model folder of the inference tests."""

from tests.inference.conftest import model_dir  # noqa: F401

"""`warmstart build`: functions' and layers' requirements installed for Lambda's platform."""

from .builder import BuildError, Built, build, pip_platforms

__all__ = ["BuildError", "Built", "build", "pip_platforms"]

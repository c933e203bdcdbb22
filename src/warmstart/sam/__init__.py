"""Load functions from a SAM or CloudFormation template (YAML or JSON).

Resolves what can be resolved on one machine: Parameters (defaults and overrides), pseudo
parameters, Conditions, Mappings and the intrinsic functions over them; merges Globals.Function
the way the SAM transform does; and turns each function into a validated FunctionSpec.

reader: the file (UTF-8, YAML tags, bounds); intrinsics: the functions; functions: one function
resource's properties; loader: the sections, and load_template.
"""

from __future__ import annotations

from .loader import Template, load_template, merge_globals, parse_parameter_overrides
from .reader import CfnLoader

__all__ = ["CfnLoader", "Template", "load_template", "merge_globals", "parse_parameter_overrides"]

"""Load tests from Artillery scripts (`warmstart load`): the script, the open-loop schedule.

Example:
    from pathlib import Path
    from warmstart.load import arrivals, load_script
    script = load_script(Path("load.yml"))
    print(len(arrivals(script.phases)), "arrivals")
"""

from .schedule import arrivals, phase_arrivals
from .script import Phase, Scenario, Script, ScriptError, Step, load_script, render

__all__ = [
    "Phase",
    "Scenario",
    "Script",
    "ScriptError",
    "Step",
    "arrivals",
    "load_script",
    "phase_arrivals",
    "render",
]

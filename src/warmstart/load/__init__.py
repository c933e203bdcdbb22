"""Load tests from Artillery scripts (`warmstart load`): the script, the open-loop schedule.

Example:
    from pathlib import Path
    from warmstart.load import arrivals, load_script
    script = load_script(Path("load.yml"))
    print(len(arrivals(script.phases)), "arrivals")
"""

from .runner import LoadRun, Second
from .schedule import arrivals, phase_arrivals
from .script import Phase, Scenario, Script, ScriptError, Step, load_script, render

__all__ = [
    "LoadRun",
    "Phase",
    "Scenario",
    "Script",
    "ScriptError",
    "Second",
    "Step",
    "arrivals",
    "load_script",
    "phase_arrivals",
    "render",
]

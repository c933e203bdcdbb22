"""Cold-start and warm-invocation benchmarks of one function (`warmstart bench`).

Example:
    from warmstart import Runtime
    from warmstart.bench import bench_cold
    with Runtime.from_template("template.yaml", import_time=True) as rt:
        print(bench_cold(rt, "Hello", n=10)["top_imports"][:3])
"""

from .importtime import init_imports, top_packages
from .runner import BenchError, bench_cold, bench_warm, summary

__all__ = ["BenchError", "bench_cold", "bench_warm", "init_imports", "summary", "top_packages"]

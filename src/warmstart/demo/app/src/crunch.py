def handler(event, context):
    """CPU-bound: arithmetic in a loop (no I/O, no sleeping)."""
    n = int(event.get("n", 1_000_000)) if isinstance(event, dict) else 1_000_000
    total = 0
    for i in range(n):
        total += i * i % 7
    return {"n": n, "total": total}

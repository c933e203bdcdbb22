def handler(event, context):
    n = event.get("n", 2_000_000)
    total = 0
    for i in range(n):
        total += i * i % 7
    return total

def handler(event, context):
    """Allocate and touch `mb` megabytes."""
    blocks = []
    for _ in range(event.get("mb", 512)):
        block = bytearray(1 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        blocks.append(block)
    return {"allocated_mb": len(blocks)}

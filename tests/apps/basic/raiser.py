class OrderError(Exception):
    pass


def handler(event, context):
    helper(event)


def helper(event):
    raise OrderError(f"bad order {event.get('id')}")

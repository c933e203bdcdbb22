import decimal


def not_json(event, context):
    return {"a set": {1, 2}}


def too_big(event, context):
    return "x" * (6 * 1024 * 1024 + 1)


def decimals(event, context):
    return {"price": decimal.Decimal("1.5"), "count": decimal.Decimal("3")}


def unicode(event, context):
    return {"text": "héllo ✓"}


def raw_bytes(event, context):
    return b"raw"


def echo_event(event, context):
    return event


def scheduling(event, context):
    import os

    return {"policy": os.sched_getscheduler(0)}

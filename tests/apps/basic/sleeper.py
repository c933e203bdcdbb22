import time


def handler(event, context):
    print("going to sleep")
    time.sleep(event.get("seconds", 10))
    return {
        "slept": event.get("seconds", 10),
        "remaining_ms": context.get_remaining_time_in_millis(),
    }

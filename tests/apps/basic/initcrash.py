raise RuntimeError("cannot connect to the database")


def handler(event, context):
    return 1

import nonexistent_module_for_warmstart_tests  # noqa: F401


def handler(event, context):
    return 1

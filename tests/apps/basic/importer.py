import importlib


def handler(event, context):
    try:
        module = importlib.import_module(event["module"])
    except ImportError as e:
        return {"ok": False, "error": str(e)}
    return {"ok": True, "file": getattr(module, "__file__", None)}

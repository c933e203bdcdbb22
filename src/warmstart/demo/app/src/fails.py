def handler(event, context):
    raise ValueError("the order has no items")

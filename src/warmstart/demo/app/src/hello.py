import os
import time

STARTED = time.time()  # module scope runs once per environment, during INIT
GREETING = os.environ.get("GREETING", "Hello")


def handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    print(f"greeting {name} from {context.function_name}:{context.function_version}")
    return {
        "message": f"{GREETING}, {name}!",
        "environment_age_s": round(time.time() - STARTED, 3),
        "initialization_type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
    }

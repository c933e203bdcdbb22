import layermod
import sitemod


def handler(event, context):
    return {"layer": layermod.NAME, "site": sitemod.NAME}

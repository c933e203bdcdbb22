"""Front doors: the Lambda API (boto3, the AWS CLI) and API Gateway, over HTTP."""

from .apigw import ApiGateway, Route, routes
from .guard import Guard
from .lambda_api import LambdaApi
from .server import Endpoints, serve
from .sigv4 import SignatureError, Verifier

__all__ = [
    "ApiGateway",
    "Endpoints",
    "Guard",
    "LambdaApi",
    "Route",
    "SignatureError",
    "Verifier",
    "routes",
    "serve",
]

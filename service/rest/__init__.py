"""REST front end (FastAPI) over the detection core."""

from service.rest.app import create_app

__all__ = ["create_app"]

"""JSON responses rendered with orjson, which splices stored raw events in unparsed."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

JSON_MEDIA_TYPE = "application/json"


def json_response(body: Any, status_code: int = 200) -> Response:
    """A JSON response; ``orjson.Fragment`` values go out byte for byte."""
    return Response(orjson.dumps(body), status_code, media_type=JSON_MEDIA_TYPE)

"""service/rest/docs.py and responses.py: the OpenAPI document narrowed to this server, and error docs."""

from __future__ import annotations

from service.rest.docs import restrict_fields
from service.rest.responses import error_responses


def test_limits_reach_query_parameters_and_body_properties_of_that_name() -> None:
    document = {
        "paths": {
            "/v1/detect": {
                "post": {
                    "parameters": [{"name": "max_size", "schema": {"type": "integer"}}],
                    "requestBody": {"content": {"application/json": {"schema": {"properties": {"images": {}}}}}},
                }
            }
        }
    }
    restrict_fields(document, {"max_size": {"maximum": 1920}, "images": {"maxItems": 32}})
    operation = document["paths"]["/v1/detect"]["post"]
    assert operation["parameters"][0]["schema"] == {"type": "integer", "maximum": 1920}
    assert operation["requestBody"]["content"]["application/json"]["schema"]["properties"]["images"] == {"maxItems": 32}


def test_every_code_the_rest_layer_answers_itself_is_documented() -> None:
    described = " ".join(entry["description"] for entry in error_responses(400, 401, 408, 413, 415, 422, 503).values())
    for code in ("invalid_json", "invalid_multipart", "header_timeout", "body_timeout", "too_many_connections"):
        assert code in described

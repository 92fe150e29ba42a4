"""OpenAPI post-processing for the record endpoints."""

from ingestion.serializers import INPUT_SERIALIZERS


def closed_record_inputs(result, generator, request, public):
    """Record inputs refuse unknown fields (`unknown_field`): say so with additionalProperties: false."""
    schemas = result.get("components", {}).get("schemas", {})
    for serializer in INPUT_SERIALIZERS.values():
        name = serializer.Meta.ref_name
        for component in (name, f"{name}Request"):
            if component in schemas:
                schemas[component]["additionalProperties"] = False
    return result

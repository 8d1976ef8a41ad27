"""The OpenAPI document says what the API enforces: request bodies refuse unknown fields.

Request Structs are ``forbid_unknown_fields=True`` (a typo in a field name is a 400, not a silent
default); Litestar's Struct schema leaves ``additionalProperties`` open, so a client generated from
the document (or schemathesis) would believe extra fields are fine. This plugin closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema

__all__ = ["StrictStructSchemaPlugin"]


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Struct schemas with ``additionalProperties: false`` when the Struct forbids unknown fields."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        if not super().is_plugin_supported_field(field_definition):
            return False
        config = getattr(field_definition.type_, "__struct_config__", None)
        return bool(config and config.forbid_unknown_fields)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        return schema


"""The OpenAPI document says what the API enforces: request bodies refuse unknown fields.

Request Structs are ``forbid_unknown_fields=True`` (a typo in a field name is a 400, not a silent
default); Litestar's Struct schema leaves ``additionalProperties`` open, so a client generated from
the document (or schemathesis) would believe extra fields are fine. This plugin closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec.inspect as mi
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
        _restore_int_bounds(field_definition.type_, schema)
        return schema


def _int_type(t: mi.Type) -> mi.IntType | None:
    if isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.UnionType):
        ints = [u for u in (_int_type(x) for x in t.types) if u is not None]
        return ints[0] if len(ints) == 1 else None
    return t if isinstance(t, mi.IntType) else None


def _restore_int_bounds(struct: type, schema: Schema) -> None:
    """Put back ``minimum``/``maximum`` that are 0 (falsy, so left out by Litestar)."""
    info = mi.type_info(struct)
    if not isinstance(info, mi.StructType) or not schema.properties:
        return
    for field in info.fields:
        prop = schema.properties.get(field.encode_name)
        int_type = _int_type(field.type)
        if prop is None or int_type is None or not hasattr(prop, "minimum"):
            continue
        if int_type.ge == 0 and prop.minimum is None:
            prop.minimum = 0
        if int_type.gt == 0 and prop.exclusive_minimum is None:
            prop.exclusive_minimum = 0
        if int_type.le == 0 and prop.maximum is None:
            prop.maximum = 0
        if int_type.lt == 0 and prop.exclusive_maximum is None:
            prop.exclusive_maximum = 0


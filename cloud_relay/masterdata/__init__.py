"""BOM publishing: engineering revisions, validated against Odoo, approved by a person and
published as the BOM production uses, exactly once, with history and rollback."""

"""The BOM store's tables, one migration list for SQLite and PostgreSQL (only the
auto-increment primary key differs)."""

from __future__ import annotations


def schema(id_column: str) -> tuple[tuple[str, ...], ...]:
    """The migrations, with the dialect's auto-increment primary key."""
    return (
        (
            f"""CREATE TABLE bom_submissions (
                id {id_column},
                received_at TEXT NOT NULL,
                submitted_by TEXT NOT NULL,
                via TEXT NOT NULL,
                body TEXT NOT NULL,
                top_product TEXT NOT NULL,
                top_revision TEXT NOT NULL,
                state TEXT NOT NULL,
                publish_after TEXT,
                decided_by TEXT,
                decided_at TEXT,
                reason TEXT,
                published_at TEXT,
                park_reason TEXT,
                parked_at TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                force INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX bom_submissions_state ON bom_submissions (state, publish_after)",
            f"""CREATE TABLE bom_revisions (
                id {id_column},
                submission_id INTEGER NOT NULL,
                product TEXT NOT NULL,
                revision TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                refused INTEGER NOT NULL DEFAULT 0,
                odoo_bom_id INTEGER,
                fingerprint TEXT,
                published_at TEXT
            )""",
            """CREATE UNIQUE INDEX bom_revisions_key ON bom_revisions (product, revision)
               WHERE refused = 0""",
            f"""CREATE TABLE bom_current (
                id {id_column},
                product TEXT NOT NULL,
                revision TEXT NOT NULL,
                since TEXT NOT NULL,
                actor TEXT NOT NULL,
                reason TEXT
            )""",
            "CREATE INDEX bom_current_product ON bom_current (product, id)",
            f"""CREATE TABLE bom_audit (
                id {id_column},
                at TEXT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                submission_id INTEGER,
                product TEXT,
                revision TEXT,
                reason TEXT
            )""",
            """CREATE TABLE bom_lease (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at TEXT NOT NULL
            )""",
        ),
    )

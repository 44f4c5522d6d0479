"""What the relay's stores share: the SQLite and PostgreSQL connection, schema and error
machinery, and the text form of timestamps. The inbox and the posting store add their queries."""

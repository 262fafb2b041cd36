"""The historian and batch records (ISA-88), on SQLAlchemy Core."""

"""Database access: connections, reflection, value codecs."""

"""The PySide6 window: adapters from the core (document, edits, engine) to Qt."""
